/**
 * A scripted JSON-RPC server for the client library's Node tests (ws, on
 * 127.0.0.1): every frame a client sends goes to `answer`, which replies
 * (or not) on the socket; `notify` sends a notification to the latest
 * client. What a real worker would do is up to each test.
 */
import { type WebSocket as ServerSocket, WebSocketServer } from "ws";

export interface ClientFrame {
  readonly id: number;
  readonly method: string;
  readonly params: Record<string, unknown>;
}

export interface ScriptedServer {
  /** `http://127.0.0.1:<port>`, for kurentoFor / joined. */
  readonly url: string;
  notify(method: string, params: object): void;
  close(): Promise<void>;
}

export function reply(socket: ServerSocket, id: number, result: object): void {
  socket.send(JSON.stringify({ jsonrpc: "2.0", id, result }));
}

export function replyError(socket: ServerSocket, id: number, error: { code: number; message: string }): void {
  socket.send(JSON.stringify({ jsonrpc: "2.0", id, error }));
}

export async function startScriptedServer(
  answer: (frame: ClientFrame, socket: ServerSocket) => void,
): Promise<ScriptedServer> {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  const port = (server.address() as { port: number }).port;
  let client: ServerSocket | null = null;
  server.on("connection", (socket) => {
    client = socket;
    socket.on("message", (raw) => answer(JSON.parse(String(raw)) as ClientFrame, socket));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    notify(method, params) {
      client?.send(JSON.stringify({ jsonrpc: "2.0", method, params }));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
