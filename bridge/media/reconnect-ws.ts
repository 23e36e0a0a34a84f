/**
 * A `reconnect-ws` for kurento-client, built on ws@8.
 *
 * Why: the registry `reconnect-ws@0.1.0` (the package.json override) pulls in
 * websocket-stream → ws@0.7, whose frame masking expects the old
 * `require('bufferutil').BufferUtil` API; with the bufferutil@4 that npm
 * hoists here, the first frame kurento-client sends in plain Node throws
 * `Cannot read properties of undefined (reading 'mask')` and the process dies.
 * kurento-media-server.ts puts this module in the CommonJS cache under
 * reconnect-ws's resolved path before it loads kurento-client, so only the
 * bridge's kurento-client uses it and nothing in package.json changes.
 *
 * The surface kurento-client uses (KurentoClient.js `connect`):
 * `reconnect(opts, onConnection)` → emitter with `connect(uri, socketOptions)`,
 * `disconnect()`, `connected`, `reconnect`, events `connection` (a transport
 * with `write()` and `data` events), `reconnect`, `fail`; plus `disconnect`,
 * `connect` and `error`, which the bridge listens to. `error` is only emitted
 * when someone listens (the old stack crashed on a refused connection).
 */
import { EventEmitter } from "node:events";
import { WebSocket, type ClientOptions } from "ws";

export interface ReconnectOptions {
  /** Give up (emit `fail`) after this many failed attempts in a row; default never. */
  readonly failAfter?: number;
  readonly initialDelay?: number;
  readonly maxDelay?: number;
}

/** What kurento-jsonrpc reads and writes: `write(text)` and `data` events. */
export class MessageTransport extends EventEmitter {
  writable = true;
  readonly socket: WebSocket;

  constructor(socket: WebSocket) {
    super();
    this.socket = socket;
  }

  write(message: string): boolean {
    if (!this.writable || this.socket.readyState !== WebSocket.OPEN) return false;
    try {
      this.socket.send(message);
      return true;
    } catch {
      return false;
    }
  }

  send(message: string): boolean {
    return this.write(message);
  }

  end(): void {
    this.writable = false;
    this.socket.close();
  }
}

export class ReconnectingKurentoSocket extends EventEmitter {
  connected = false;
  reconnect = true;
  readonly options: ReconnectOptions;
  private uri: string | undefined;
  private socketOptions: ClientOptions | undefined;
  private current: WebSocket | undefined;
  private transport: MessageTransport | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private everConnected = false;
  private announcedReconnect = false;

  constructor(options: ReconnectOptions) {
    super();
    this.options = options;
  }

  connect(uri: string, socketOptions?: ClientOptions): this {
    this.uri = uri;
    this.socketOptions = socketOptions;
    this.reconnect = true;
    if (!this.connected && !this.current) this.attempt();
    return this;
  }

  disconnect(): this {
    this.reconnect = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.transport) this.transport.writable = false;
    const socket = this.current;
    if (socket) {
      // A socket still connecting cannot be closed gracefully.
      if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
      else socket.close();
    }
    return this;
  }

  /** Ends the current connection; it reconnects (like a network drop). */
  dropConnection(): void {
    this.current?.terminate();
  }

  private delay(): number {
    // Fibonacci-ish growth like reconnect-core's default, capped.
    const initial = this.options.initialDelay ?? 100;
    const max = this.options.maxDelay ?? 5000;
    let a = initial;
    let b = initial;
    for (let i = 1; i < this.failures; i++) [a, b] = [b, a + b];
    return Math.min(a, max);
  }

  private attempt(): void {
    this.timer = undefined;
    if (!this.reconnect || this.connected || !this.uri) return;
    // kurento-client treats the next connection as a *re*connection (and sends
    // `connect {sessionId}`) once it has seen `reconnect`; announce it once per drop.
    if (this.everConnected && !this.announcedReconnect) {
      this.announcedReconnect = true;
      this.emit("reconnect", this.failures, 0);
    }
    const socket = new WebSocket(this.uri, { handshakeTimeout: 10_000, ...this.socketOptions });
    this.current = socket;
    let opened = false;
    socket.on("open", () => {
      opened = true;
      this.connected = true;
      this.everConnected = true;
      this.announcedReconnect = false;
      this.failures = 0;
      const transport = new MessageTransport(socket);
      this.transport = transport;
      this.emit("connect", transport);
      this.emit("connection", transport);
    });
    socket.on("message", (data, isBinary) => {
      if (isBinary) return;
      const text = Array.isArray(data) ? Buffer.concat(data).toString("utf8") : Buffer.from(data as ArrayBuffer).toString("utf8");
      this.transport?.emit("data", text);
    });
    socket.on("error", (error) => {
      if (this.listenerCount("error") > 0) this.emit("error", error);
    });
    socket.on("close", (code, reason) => {
      if (this.current !== socket) return;
      this.current = undefined;
      if (this.transport?.socket === socket) this.transport.writable = false;
      this.connected = false;
      this.emit("disconnect", opened ? new Error(`socket closed (${code}${reason.length ? ` ${reason.toString()}` : ""})`) : new Error("connection failed"));
      if (!this.reconnect) return;
      this.failures += 1;
      const failAfter = this.options.failAfter ?? Number.POSITIVE_INFINITY;
      if (this.failures > failAfter) {
        this.reconnect = false;
        this.emit("fail", new Error(`gave up after ${failAfter} attempts`));
        return;
      }
      const delay = opened ? 0 : this.delay();
      this.emit("backoff", this.failures, delay);
      this.timer = setTimeout(() => this.attempt(), delay);
      this.timer.unref?.();
    });
  }
}

/** The module shape kurento-client requires: `reconnect(opts, onConnection)`. */
export function reconnectWs(options: ReconnectOptions | ((transport: MessageTransport) => void), onConnection?: (transport: MessageTransport) => void): ReconnectingKurentoSocket {
  const opts = typeof options === "function" ? {} : options;
  const listener = typeof options === "function" ? options : onConnection;
  const emitter = new ReconnectingKurentoSocket(opts);
  if (listener) emitter.on("connection", listener);
  return emitter;
}
