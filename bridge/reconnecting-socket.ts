/**
 * A WebSocket the bridge dials and keeps dialling (ws@8): exponential backoff
 * with jitter between attempts, fresh headers (a new single-use token) for
 * every attempt, a readable log line when the worker refuses the upgrade
 * (401: bad token), and a ping heartbeat that notices a dead peer.
 */
import { WebSocket, type RawData } from "ws";
import type { Logger } from "./log.ts";
import { backoffDelay, type BackoffOptions } from "../protocol/backoff.ts";
import { CloseCode } from "../protocol/close-codes.ts";

export type { BackoffOptions };

export const DEFAULT_BACKOFF: BackoffOptions = { minMs: 500, maxMs: 10_000 };

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
  /** The socket had been open (the close ended a connection, not an attempt). */
  readonly wasOpen: boolean;
}

export interface ReconnectingSocketOptions {
  /** For logs: what this socket is (`control`, `room:<name>`). */
  readonly name: string;
  readonly url: string;
  /** Called before every attempt. */
  readonly headers: () => Promise<Record<string, string>>;
  readonly backoff?: BackoffOptions;
  /** Ping interval; the socket is dropped after two intervals without any sign of life. 0 disables. */
  readonly heartbeatMs?: number;
  readonly log: Logger;
  readonly onOpen: () => void;
  readonly onMessage: (text: string) => void;
  /** After every close or failed attempt; return false to stop reconnecting. */
  readonly onClose: (info: CloseInfo) => boolean;
}

export class ReconnectingSocket {
  private readonly options: ReconnectingSocketOptions;
  private socket: WebSocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private attempt = 0;
  private stopped = false;
  private openedAt = 0;
  private lastSeen = 0;
  private connecting = false;
  /** Successful opens so far. */
  opens = 0;

  constructor(options: ReconnectingSocketOptions) {
    this.options = options;
  }

  get isOpen(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  start(): void {
    this.stopped = false;
    if (!this.socket && !this.timer && !this.connecting) void this.dial();
  }

  /** Skips the current backoff wait (e.g. the control link came back). */
  retryNow(): void {
    if (this.stopped || this.socket || this.connecting) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    void this.dial();
  }

  send(text: string): void {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) throw new Error(`${this.options.name} link is not open`);
    socket.send(text);
  }

  /** Closes for good; resolves once the socket is closed (bounded). */
  async stop(code: number = CloseCode.NORMAL, reason = "bridge stopping"): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.stopHeartbeat();
    const socket = this.socket;
    if (!socket) return;
    if (socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const done = setTimeout(() => {
        socket.terminate();
        resolve();
      }, 2000);
      socket.once("close", () => {
        clearTimeout(done);
        resolve();
      });
      if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
      else socket.close(code, reason);
    });
  }

  /** Drops the current connection (it reconnects). For tests and for a peer that misbehaves. */
  drop(code: number = CloseCode.LINK_DROPPED, reason = "dropped by the bridge"): void {
    const socket = this.socket;
    if (socket?.readyState === WebSocket.OPEN) socket.close(code, reason);
    else socket?.terminate();
  }

  private async dial(): Promise<void> {
    this.timer = undefined;
    if (this.stopped) return;
    this.connecting = true;
    let headers: Record<string, string>;
    try {
      headers = await this.options.headers();
    } catch (error) {
      this.connecting = false;
      this.options.log.error("could not prepare the connection", { link: this.options.name, error });
      this.schedule();
      return;
    }
    this.connecting = false;
    if (this.stopped) return;
    const socket = new WebSocket(this.options.url, { headers, handshakeTimeout: 10_000, maxPayload: 1024 * 1024 });
    this.socket = socket;
    let wasOpen = false;
    let refused: { status: number; body: string } | undefined;
    let lastError = "";

    socket.on("unexpected-response", (request, response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on("data", (chunk: Buffer) => {
        if (size < 2048) chunks.push(chunk);
        size += chunk.length;
      });
      response.on("end", () => {
        refused = { status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8").slice(0, 2048) };
        this.logRefusal(refused);
        request.destroy();
        socket.terminate();
      });
      response.on("error", () => socket.terminate());
    });
    socket.on("open", () => {
      wasOpen = true;
      this.opens += 1;
      this.openedAt = Date.now();
      this.lastSeen = Date.now();
      this.startHeartbeat(socket);
      this.options.log.info("link open", { link: this.options.name, attempt: this.attempt });
      this.options.onOpen();
    });
    socket.on("message", (data: RawData) => {
      this.lastSeen = Date.now();
      // Binary frames are decoded as text too; what is not JSON gets a parse error.
      this.options.onMessage(rawToText(data));
    });
    socket.on("pong", () => {
      this.lastSeen = Date.now();
    });
    socket.on("error", (error) => {
      lastError = error.message;
    });
    socket.on("close", (code, reasonBuffer) => {
      if (this.socket === socket) this.socket = undefined;
      this.stopHeartbeat();
      const reason = reasonBuffer.toString("utf8");
      if (wasOpen) {
        // A connection that lived a while resets the backoff; one that flaps does not.
        if (Date.now() - this.openedAt > 5000) this.attempt = 0;
        this.options.log.warn("link closed", { link: this.options.name, code, reason });
      } else if (!refused) {
        this.options.log.warn("could not connect", { link: this.options.name, url: this.options.url, attempt: this.attempt, error: lastError || `closed (${code})` });
      }
      const again = this.options.onClose({ code, reason, wasOpen });
      if (again && !this.stopped) this.schedule();
    });
  }

  private logRefusal(refused: { status: number; body: string }): void {
    let detail = refused.body;
    try {
      const parsed: unknown = JSON.parse(refused.body);
      if (typeof parsed === "object" && parsed !== null && typeof (parsed as { error?: unknown }).error === "string") detail = (parsed as { error: string }).error;
    } catch {
      // not JSON: keep the text
    }
    const fields = { link: this.options.name, url: this.options.url, status: refused.status, detail };
    if (refused.status === 401) {
      this.options.log.error("the worker refused the bridge token (401): check that BRIDGE_SECRET is the same for the worker and the bridge, and that both clocks are right", fields);
    } else if (refused.status === 503) {
      this.options.log.error("the worker does not accept bridges (503): is BRIDGE_SECRET set on the worker?", fields);
    } else {
      this.options.log.error("the worker refused the WebSocket upgrade", fields);
    }
  }

  private schedule(): void {
    if (this.stopped || this.timer) return;
    const delay = backoffDelay(this.attempt, this.options.backoff ?? DEFAULT_BACKOFF);
    this.attempt += 1;
    this.timer = setTimeout(() => void this.dial(), delay);
  }

  private startHeartbeat(socket: WebSocket): void {
    const interval = this.options.heartbeatMs ?? 30_000;
    if (interval <= 0) return;
    this.stopHeartbeat();
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastSeen > interval * 2) {
        this.options.log.warn("link silent for too long; reconnecting", { link: this.options.name });
        socket.terminate();
        return;
      }
      try {
        socket.ping();
      } catch {
        // closing
      }
    }, interval);
    this.heartbeat.unref();
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }
}

function rawToText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
  return data.toString("utf8");
}
