/**
 * A WebSocket the bridge dials and keeps dialling (ws@8): exponential backoff
 * with jitter between attempts, fresh headers (a new single-use token) for
 * every attempt, a readable log line when the worker refuses the upgrade
 * (401: bad token), and a ping heartbeat that notices a dead peer. Its state
 * is one field changed by one transition function (link-state.ts).
 */
import { WebSocket, type RawData } from "ws";
import type { Logger } from "./log.ts";
import { backoffDelay, type BackoffOptions } from "../protocol/backoff.ts";
import { CloseCode } from "../protocol/close-codes.ts";
import { initialLinkState, type LinkEvent, type LinkState, socketOf, transition } from "./link-state.ts";

export type { BackoffOptions };

export const DEFAULT_BACKOFF: BackoffOptions = { minMs: 500, maxMs: 10_000 };

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
  /** The socket had been open (the close ended a connection, not an attempt). */
  readonly wasOpen: boolean;
  /** The HTTP status with which the worker refused the upgrade, if it did. */
  readonly refusedStatus: number | null;
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
  /** After every close or failed attempt of the current socket; return false to stop reconnecting. */
  readonly onClose: (info: CloseInfo) => boolean;
}

export class ReconnectingSocket {
  private readonly options: ReconnectingSocketOptions;
  /** The one state field (link-state.ts); everything else below is an effect of it. */
  private state: LinkState<WebSocket> = initialLinkState();
  /** Runs in `backoff`. */
  private timer: NodeJS.Timeout | undefined;
  /** Runs in `open`. */
  private heartbeat: NodeJS.Timeout | undefined;
  private lastSeen = 0;
  /** Successful opens so far (a connection's identity for the control link). */
  opens = 0;

  constructor(options: ReconnectingSocketOptions) {
    this.options = options;
  }

  get isOpen(): boolean {
    return this.state.kind === "open" && this.state.socket.readyState === WebSocket.OPEN;
  }

  /** Starts dialling (once; `stop` is final). */
  start(): void {
    if (this.apply({ type: "start" }).kind === "preparing") void this.dial();
  }

  /** Skips the current backoff wait (e.g. the control link came back). */
  retryNow(): void {
    const from = this.state;
    if (this.apply({ type: "retry" }) !== from) void this.dial();
  }

  send(text: string): void {
    const socket = socketOf(this.state);
    if (!socket || socket.readyState !== WebSocket.OPEN) throw new Error(`${this.options.name} link is not open`);
    socket.send(text);
  }

  /** Closes for good; resolves once the socket is closed (bounded). */
  async stop(code: number = CloseCode.NORMAL, reason = "bridge stopping"): Promise<void> {
    const socket = socketOf(this.state);
    this.apply({ type: "stop" });
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
    const socket = socketOf(this.state);
    if (socket?.readyState === WebSocket.OPEN) socket.close(code, reason);
    else socket?.terminate();
  }

  /** Applies `event` and the effects of leaving and entering states; returns the new state. */
  private apply(event: LinkEvent<WebSocket>): LinkState<WebSocket> {
    const from = this.state;
    const to = transition(from, event);
    if (to === from) return to;
    this.state = to;
    if (from.kind === "backoff") {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (from.kind === "open") this.stopHeartbeat();
    if (to.kind === "open") {
      this.opens += 1;
      this.lastSeen = Date.now();
      this.startHeartbeat(to.socket);
    }
    if (to.kind === "backoff") {
      const delay = backoffDelay(to.step, this.options.backoff ?? DEFAULT_BACKOFF);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.retryNow();
      }, delay);
    }
    return to;
  }

  private async dial(): Promise<void> {
    let headers: Record<string, string>;
    try {
      headers = await this.options.headers();
    } catch (error) {
      if (this.state.kind !== "preparing") return;
      this.options.log.error("could not prepare the connection", { link: this.options.name, error });
      this.apply({ type: "prepareFailed" });
      return;
    }
    // Stopped meanwhile: no socket.
    if (this.state.kind !== "preparing") return;
    const socket = new WebSocket(this.options.url, { headers, handshakeTimeout: 10_000, maxPayload: 1024 * 1024 });
    this.apply({ type: "dial", socket });
    let wasOpen = false;
    let refused: { status: number; body: string } | undefined;
    let lastError = "";
    const current = (): boolean => socketOf(this.state) === socket;

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
      if (!current()) return;
      this.apply({ type: "opened", at: Date.now() });
      this.options.log.info("link open", { link: this.options.name, attempt: this.state.retries });
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
      const reason = reasonBuffer.toString("utf8");
      if (wasOpen) {
        this.options.log.warn("link closed", { link: this.options.name, code, reason });
      } else if (!refused) {
        const error = lastError || `closed (${code})`;
        this.options.log.warn("could not connect", {
          link: this.options.name,
          url: this.options.url,
          attempt: this.state.retries,
          error,
        });
      }
      // A socket left behind by stop() is nobody's concern any more; only the current one decides.
      if (!current()) return;
      const again = this.options.onClose({ code, reason, wasOpen, refusedStatus: refused?.status ?? null });
      this.apply({ type: "closed", at: Date.now(), reconnect: again });
    });
  }

  private logRefusal(refused: { status: number; body: string }): void {
    let detail = refused.body;
    try {
      const parsed: unknown = JSON.parse(refused.body);
      if (typeof parsed === "object" && parsed !== null && typeof (parsed as { error?: unknown }).error === "string")
        detail = (parsed as { error: string }).error;
    } catch {
      // not JSON: keep the text
    }
    const fields = { link: this.options.name, url: this.options.url, status: refused.status, detail };
    if (refused.status === 401) {
      this.options.log.error(
        "the worker refused the bridge token (401): check the bridge's credential (BRIDGE_SECRET equal to the worker's, or BRIDGE_KEY made for this BRIDGE_ID from the worker's BRIDGE_SECRET with `npm run bridge:key`) and that both clocks are right",
        fields,
      );
    } else if (refused.status === 409) {
      this.options.log.warn("the worker gave this room to another media bridge (409)", fields);
    } else if (refused.status === 503) {
      this.options.log.error("the worker does not accept bridges (503): is BRIDGE_SECRET set on the worker?", fields);
    } else {
      this.options.log.error("the worker refused the WebSocket upgrade", fields);
    }
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
