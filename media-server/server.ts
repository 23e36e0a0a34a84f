import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import { accessCheck, isLoopbackHost } from "./access.ts";
import { DEFAULT_WEBRTC_SETTINGS, type MediaServerOptions } from "./config.ts";
import { type ClientConnection, KurentoRpc, type RpcStats } from "./kurento-rpc.ts";
import type { MediaServerContext } from "./objects/media-object.ts";
import { encodeFrame } from "./protocol.ts";
import { ObjectRegistry } from "./registry.ts";

export interface MediaServerHandle {
  /** `ws://host:port/kurento`, what kurento-client (and the bridge's KMS_URIS) connects to. */
  readonly url: string;
  readonly port: number;
  readonly host: string;
  /** Live media objects (pipelines and elements), pipelines, sessions. */
  stats(): RpcStats;
  /** Closes every socket, releases every object, stops listening. */
  close(): Promise<void>;
}

const KURENTO_PATH = "/kurento";
const MAX_FRAME_BYTES = 1024 * 1024;
const SOCKET_HEARTBEAT_MS = 30_000;

export async function startMediaServer(options: MediaServerOptions = {}): Promise<MediaServerHandle> {
  const host = options.host ?? "127.0.0.1";
  const log = options.log ?? ((message: string) => process.stderr.write(`[media-server] ${message}\n`));
  if (options.token !== undefined && options.token.trim() === "") throw new Error("token must not be empty");
  const allowed = accessCheck({ allowedOrigins: options.allowedOrigins ?? [], token: options.token });
  const context: MediaServerContext = {
    registry: new ObjectRegistry(),
    webrtc: { ...DEFAULT_WEBRTC_SETTINGS, ...options.webrtc },
    log,
  };
  const rpc = new KurentoRpc(context, options.sessionGraceMs ?? 30_000);

  const http = createServer((request, response) => serveHttp(request, response, rpc));
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  const alive = new WeakMap<WebSocket, boolean>();

  http.on("upgrade", (request, socket, head) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (path !== KURENTO_PATH) {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
      return;
    }
    // Refused before the upgrade: a refused client never gets a socket, let alone a session.
    const decision = allowed(request);
    if (!decision.allowed) {
      // The reason names no secret; the request's URL (which may hold a token) is not logged.
      log(`refused a WebSocket from ${request.socket.remoteAddress ?? "?"}: ${decision.reason}`);
      refuse(socket, decision.status, decision.reason);
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit("connection", ws, request));
  });

  wss.on("connection", (ws: WebSocket) => {
    alive.set(ws, true);
    ws.on("pong", () => alive.set(ws, true));
    const connection: ClientConnection = {
      current: undefined,
      closed: false,
      sessions: new Set(),
      // Once a close frame went either way the socket no longer holds its sessions: `connect` may resume them.
      live: () => ws.readyState === ws.OPEN,
      send(frame) {
        if (ws.readyState === ws.OPEN) ws.send(encodeFrame(frame));
      },
    };
    // kurento-client's websocket-stream transport sends JSON in binary frames; KMS reads both kinds as UTF-8 text.
    ws.on("message", (data) => {
      const text = Array.isArray(data)
        ? Buffer.concat(data).toString("utf8")
        : Buffer.from(data as ArrayBuffer).toString("utf8");
      // A reply that cannot be sent (or serialised) is logged; it must not take the process down.
      rpc
        .handleText(connection, text)
        .then((reply) => {
          if (reply !== undefined) connection.send(reply);
        })
        .catch((error: unknown) => {
          log(`unhandled error serving a frame: ${error instanceof Error ? error.stack : String(error)}`);
        });
    });
    ws.on("close", () => rpc.disconnected(connection));
    ws.on("error", (error) => log(`socket error: ${error.message}`));
  });

  // Sockets whose peer vanished without a FIN would keep their sessions alive forever.
  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      if (alive.get(ws) === false) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
  }, SOCKET_HEARTBEAT_MS);
  heartbeat.unref();

  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(options.port ?? 8888, host, () => {
      http.off("error", reject);
      resolve();
    });
  });
  const port = (http.address() as AddressInfo).port;
  if (!isLoopbackHost(host) && options.token === undefined) {
    log(
      `listening on ${host}, not loopback, without a token: anyone who reaches port ${port} can drive this media server (set KMS_TOKEN)`,
    );
  }
  const urlHost = host.includes(":") ? `[${host}]` : host;

  let closing: Promise<void> | undefined;
  return {
    url: `ws://${urlHost}:${port}${KURENTO_PATH}`,
    port,
    host,
    stats: () => rpc.stats(),
    close: () => {
      closing ??= (async () => {
        clearInterval(heartbeat);
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        await rpc.close();
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      })();
      return closing;
    },
  };
}

const STATUS_TEXT = { 401: "Unauthorized", 403: "Forbidden" } as const;

function refuse(socket: Duplex, status: 401 | 403, reason: string): void {
  const body = `${reason}\n`;
  const challenge = status === 401 ? 'WWW-Authenticate: Bearer realm="kurento"\r\n' : "";
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `${challenge}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function serveHttp(request: IncomingMessage, response: ServerResponse, rpc: KurentoRpc): void {
  const path = new URL(request.url ?? "/", "http://localhost").pathname;
  if (request.method === "GET" && path === "/health") {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ status: "ok", ...rpc.stats() }));
    return;
  }
  response.writeHead(404, { "content-type": "application/json" });
  response.end(
    JSON.stringify({
      error: `Not found: ${request.method} ${path}; this is a Kurento-protocol media server (WebSocket at ${KURENTO_PATH}, health at /health)`,
    }),
  );
}
