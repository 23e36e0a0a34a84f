/**
 * A Kurento-protocol relay between the bridge and the embedded media server:
 * it gives the media server a fixed address across restarts, and it records
 * what the media server actually saw and answered.
 *
 * - **A fixed address.** The bridge keeps one KMS URI for its whole life, so
 *   a test that restarts the media server (or starts it late) needs that
 *   address to stay the same. Picking a "free" port and binding it again
 *   later races with every other process on the machine; instead the relay
 *   listens on a port the OS picks (port 0) and passes each WebSocket on to
 *   the media server of the moment, which also listens on port 0. With no
 *   media server behind it the relay resets the connection during the
 *   handshake: to the bridge, a media server that is down. When the media
 *   server drops a socket, the relay drops the bridge's: a restart looks
 *   exactly like one.
 * - **What the media server saw.** Every frame both ways is recorded, so a
 *   test can check the requests that reached the media server (`create`
 *   params, each `addIceCandidate`) and its answers, and `invoke` can ask the
 *   media server something on the bridge's own session (the media server
 *   shows a session's objects to that session only); its answer is not passed
 *   on to the bridge.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type * as WsModule from "ws";
import type { RawData, WebSocket, WebSocketServer } from "ws";

// vitest may resolve `import "ws"` to ws's browser build; load the Node one.
const ws = createRequire(import.meta.url)("ws") as typeof WsModule;

export interface KurentoFrame {
  id?: number | string | null;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown> & { value?: unknown; sessionId?: string };
  error?: { code: number; message: string; data?: unknown };
}

export interface RecordedFrame {
  /** Which relayed connection (0, 1, … in order of arrival). */
  readonly connection: number;
  readonly from: "bridge" | "kms";
  readonly frame: KurentoFrame;
}

export interface Invocation {
  readonly connection: number;
  readonly object: string;
  readonly operationParams: Record<string, unknown>;
  /** The media server's answer, once it came. */
  readonly reply: KurentoFrame | undefined;
}

interface Relayed {
  readonly index: number;
  readonly bridge: WebSocket;
  readonly kms: WebSocket;
}

function decode(data: RawData): KurentoFrame | undefined {
  const text = Array.isArray(data) ? Buffer.concat(data).toString("utf8") : Buffer.from(data as ArrayBuffer).toString();
  try {
    return JSON.parse(text) as KurentoFrame;
  } catch {
    return undefined;
  }
}

export class KmsRelay {
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly open = new Set<Relayed>();
  private readonly injected = new Map<string, (frame: KurentoFrame) => void>();
  private target: number | undefined;
  private connections = 0;
  private nextInjected = 1;
  /** Every frame relayed, both ways, in order. */
  readonly frames: RecordedFrame[] = [];
  /** Connections reset because no media server was behind the relay (or it did not accept). */
  refused = 0;

  private constructor(server: Server) {
    this.server = server;
    this.wss = new ws.WebSocketServer({ noServer: true });
    server.on("upgrade", (request, socket, head) => this.upgrade(request, socket, head));
  }

  static async start(): Promise<KmsRelay> {
    const server = createServer((_request, response) => {
      response.writeHead(404);
      response.end();
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return new KmsRelay(server);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** What the bridge's KMS_URIS names. */
  get url(): string {
    return `ws://127.0.0.1:${this.port}/kurento`;
  }

  /** Passes new connections to the media server on `port`, or resets them (`undefined`: the media server is down). */
  pointAt(port: number | undefined): void {
    this.target = port;
  }

  /** Requests the bridge sent with `method`. */
  requests(method: string): RecordedFrame[] {
    return this.frames.filter((entry) => entry.from === "bridge" && entry.frame.method === method);
  }

  /** The media server's answer to request `id` on `connection`. */
  replyTo(connection: number, id: number | string | null | undefined): KurentoFrame | undefined {
    return this.frames.find(
      (entry) =>
        entry.from === "kms" &&
        entry.connection === connection &&
        entry.frame.method === undefined &&
        entry.frame.id === id,
    )?.frame;
  }

  /** The bridge's `invoke {operation}` requests, with the media server's answers. */
  invocations(operation: string): Invocation[] {
    return this.requests("invoke")
      .filter((entry) => entry.frame.params?.operation === operation)
      .map((entry) => ({
        connection: entry.connection,
        object: String(entry.frame.params?.object),
        operationParams: (entry.frame.params?.operationParams ?? {}) as Record<string, unknown>,
        reply: this.replyTo(entry.connection, entry.frame.id),
      }));
  }

  /** The `data` of the `type` events the media server sent about `object`. */
  events(type: string, object: string): Array<Record<string, unknown>> {
    const events: Array<Record<string, unknown>> = [];
    for (const entry of this.frames) {
      if (entry.from !== "kms" || entry.frame.method !== "onEvent") continue;
      const value = (entry.frame.params?.value ?? {}) as { object?: unknown; type?: unknown; data?: unknown };
      if (value.type === type && value.object === object) events.push((value.data ?? {}) as Record<string, unknown>);
    }
    return events;
  }

  /** The bridge's `create {type}` requests, with the media server's answers. */
  creations(type: string): Array<{ constructorParams: Record<string, unknown>; reply: KurentoFrame | undefined }> {
    return this.requests("create")
      .filter((entry) => entry.frame.params?.type === type)
      .map((entry) => ({
        constructorParams: (entry.frame.params?.constructorParams ?? {}) as Record<string, unknown>,
        reply: this.replyTo(entry.connection, entry.frame.id),
      }));
  }

  /**
   * Invokes `operation` on `object` over the newest open connection, in the
   * bridge's session, and returns the media server's answer (which the bridge
   * never sees).
   */
  invoke(object: string, operation: string, operationParams: Record<string, unknown> = {}): Promise<KurentoFrame> {
    const relayed = [...this.open].at(-1);
    if (!relayed) return Promise.reject(new Error("no connection to the media server to invoke on"));
    const sessionId = [...this.frames]
      .reverse()
      .find((entry) => entry.connection === relayed.index && entry.from === "kms" && entry.frame.result?.sessionId)
      ?.frame.result?.sessionId;
    const id = `kms-relay-${this.nextInjected++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.injected.delete(id);
        reject(new Error(`no answer from the media server to ${operation} within 30 s`));
      }, 30_000);
      this.injected.set(id, (frame) => {
        clearTimeout(timer);
        resolve(frame);
      });
      relayed.kms.send(
        JSON.stringify({
          jsonrpc: "2.0",
          id,
          method: "invoke",
          params: { object, operation, operationParams, ...(sessionId ? { sessionId } : {}) },
        }),
      );
    });
  }

  private upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const port = this.target;
    const refuse = (): void => {
      this.refused += 1;
      (socket as Socket).resetAndDestroy();
    };
    if (port === undefined) return refuse();
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    const kms = new ws.WebSocket(`ws://127.0.0.1:${port}${path}`);
    kms.once("error", () => {
      if (kms.readyState !== ws.WebSocket.OPEN) refuse();
    });
    kms.once("open", () => {
      this.wss.handleUpgrade(request, socket, head, (bridge) => this.relay(bridge, kms));
    });
  }

  private relay(bridge: WebSocket, kms: WebSocket): void {
    const relayed: Relayed = { index: this.connections++, bridge, kms };
    this.open.add(relayed);
    bridge.on("message", (data, isBinary) => {
      const frame = decode(data);
      if (frame) this.frames.push({ connection: relayed.index, from: "bridge", frame });
      if (kms.readyState === ws.WebSocket.OPEN) kms.send(data, { binary: isBinary });
    });
    kms.on("message", (data, isBinary) => {
      const frame = decode(data);
      const mine = frame && typeof frame.id === "string" ? this.injected.get(frame.id) : undefined;
      if (frame && mine) {
        this.injected.delete(String(frame.id));
        return mine(frame);
      }
      if (frame) this.frames.push({ connection: relayed.index, from: "kms", frame });
      if (bridge.readyState === ws.WebSocket.OPEN) bridge.send(data, { binary: isBinary });
    });
    // Either side gone: drop the other at once, as a media server that stops does.
    const drop = (): void => {
      this.open.delete(relayed);
      bridge.terminate();
      kms.terminate();
    };
    bridge.on("close", drop);
    kms.on("close", drop);
    bridge.on("error", drop);
    kms.on("error", drop);
  }

  async close(): Promise<void> {
    for (const relayed of this.open) {
      relayed.bridge.terminate();
      relayed.kms.terminate();
    }
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
