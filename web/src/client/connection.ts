/**
 * One signalling connection: a WebSocket at a time, the project's RpcPeer for
 * requests (pending map, per-request timeout, reject-all on close), zod
 * validation of every result, and a heartbeat that notices a silent network
 * drop (a half-open socket never fires `close` by itself).
 *
 * The connection does not reconnect on its own: the Room owns that decision
 * (it knows the session id and whether a close was expected).
 */
import type { z } from "zod";
import { CloseCode } from "../../../protocol/close-codes.ts";
import { RoomCode, rpcError } from "../../../protocol/errors.ts";
import { describeIssues } from "../../../protocol/jsonrpc.ts";
import {
  HEARTBEAT_REQUEST,
  HEARTBEAT_RESPONSE,
  results,
  type requestParams,
  type RoomMethod,
  type RoomResult,
} from "../../../protocol/room.ts";
import { RpcPeer, RpcRequestError } from "../../../protocol/rpc-peer.ts";
import { RoomClientError } from "./errors.ts";

/**
 * What the library needs from a WebSocket: the browser's `WebSocket`, Node's
 * global one (Node ≥ 22) and the `ws` package all fit. Event handlers are
 * assigned as `on…` properties; what they receive is checked at run time.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: unknown;
  onclose: unknown;
  onerror: unknown;
  onmessage: unknown;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

const OPEN = 1;

/** RFC 6455's code for a connection that ended without a close frame (reported locally, never sent). */
const ABNORMAL_CLOSURE = 1006;

/** Requests the server answers only once the media bridge has (MEDIA_TIMEOUT_MS on the server). */
const MEDIA_METHODS: ReadonlySet<RoomMethod> = new Set<RoomMethod>(["publishVideo", "receiveVideoFrom"]);

export type RequestInput<M extends RoomMethod> = z.input<(typeof requestParams)[M]>;

export interface ConnectionOptions {
  readonly WebSocket: WebSocketConstructor;
  /** Per-request timeout (the original client used 15 s). */
  readonly requestTimeoutMs: number;
  /**
   * Timeout of the media requests (`publishVideo`, `receiveVideoFrom`), which the server may take
   * up to its MEDIA_TIMEOUT_MS (default 25 s) to answer; unset: `requestTimeoutMs`.
   */
  readonly mediaRequestTimeoutMs?: number;
  /** How long opening a socket may take. */
  readonly openTimeoutMs: number;
  /** A `ping` every this many ms while open; 0 disables the heartbeat. */
  readonly heartbeatIntervalMs: number;
  /** A ping unanswered for this long means the connection is gone. */
  readonly heartbeatTimeoutMs: number;
}

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

export interface ConnectionHandlers {
  onNotification(method: string, params: unknown): void;
  /** The current socket ended without `close()` being called (a drop, or the server closed it). */
  onLost(info: CloseInfo): void;
}

/** Finds a WebSocket implementation: the one given, else the global one. */
export function resolveWebSocket(given: WebSocketConstructor | undefined): WebSocketConstructor {
  if (given) return given;
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof global === "function") return global;
  throw new RoomClientError(
    "unsupported",
    "No WebSocket implementation: pass one as the `WebSocket` option (e.g. the `ws` package in Node)",
  );
}

export function transportError(message: string, code: number = RoomCode.TRANSPORT): RpcRequestError {
  return new RpcRequestError(rpcError(code as typeof RoomCode.TRANSPORT, message));
}

function field(event: unknown, key: string): unknown {
  return typeof event === "object" && event !== null && key in event
    ? (event as Record<string, unknown>)[key]
    : undefined;
}

export class Connection {
  readonly options: ConnectionOptions;
  readonly handlers: ConnectionHandlers;
  readonly peer: RpcPeer;
  /** Merged into every request's params (the original `setRpcParams`); protocol fields win. */
  rpcParams: Record<string, unknown> = {};
  #socket: WebSocketLike | null = null;
  #heartbeat: ReturnType<typeof setInterval> | null = null;
  #heartbeatAnswered = true;
  #heartbeatTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(options: ConnectionOptions, handlers: ConnectionHandlers) {
    this.options = options;
    this.handlers = handlers;
    this.peer = new RpcPeer(
      {
        send: (frame) => {
          const socket = this.#socket;
          if (!socket || socket.readyState !== OPEN) throw new Error("the connection is not open");
          socket.send(frame);
        },
      },
      {
        timeoutMs: options.requestTimeoutMs,
        onNotification: (method, params) => handlers.onNotification(method, params),
      },
    );
    this.peer.closed("not connected yet");
  }

  get isOpen(): boolean {
    return this.#socket !== null && this.#socket.readyState === OPEN;
  }

  /** Opens a socket to `url` (replacing any previous one, silently). */
  open(url: string): Promise<void> {
    this.close();
    const socket = new this.options.WebSocket(url);
    this.#socket = socket;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (message: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#detach(socket);
        if (this.#socket === socket) this.#socket = null;
        try {
          socket.close();
        } catch {
          // Not open: nothing to close.
        }
        reject(transportError(message));
      };
      const timer = setTimeout(
        () => fail(`could not connect to ${url}: no answer within ${this.options.openTimeoutMs} ms`),
        this.options.openTimeoutMs,
      );
      socket.onerror = () => fail(`could not connect to ${url}`);
      socket.onclose = (event: unknown) =>
        fail(`could not connect to ${url} (closed with code ${String(field(event, "code") ?? "?")})`);
      socket.onopen = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#wire(socket);
        this.peer.reopen();
        this.#startHeartbeat(socket);
        resolve();
      };
    });
  }

  /** Sends a request and validates its result with the protocol's schema. */
  request<M extends RoomMethod>(method: M, params: RequestInput<M>, timeoutMs?: number): Promise<RoomResult<M>> {
    const timeout = timeoutMs ?? (MEDIA_METHODS.has(method) ? this.options.mediaRequestTimeoutMs : undefined);
    return this.requestWith(method, params, results[method] as unknown as z.ZodType<RoomResult<M>>, timeout);
  }

  /** Like `request`, with a caller-chosen result schema (e.g. a looser one). */
  async requestWith<T>(method: RoomMethod, params: object, schema: z.ZodType<T>, timeoutMs?: number): Promise<T> {
    const raw = await this.peer.request(method, { ...this.rpcParams, ...params }, timeoutMs);
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      throw transportError(
        `malformed ${method} result from the server: ${describeIssues(parsed.error)}`,
        RoomCode.TRANSPORT_RESPONSE,
      );
    }
    return parsed.data;
  }

  /** Closes the current socket on purpose: no `onLost`, pending requests fail. */
  close(code: number = CloseCode.NORMAL, reason = "closed by the client"): void {
    const socket = this.#socket;
    this.#socket = null;
    this.#stopHeartbeat();
    this.peer.closed(reason);
    if (!socket) return;
    this.#detach(socket);
    try {
      socket.close(code, reason);
    } catch {
      // Already closing.
    }
  }

  /**
   * Gives up on the current socket as if the network dropped it (used when
   * the heartbeat goes unanswered): `onLost` fires now, not after the
   * browser's close handshake times out. Reported as LINK_DROPPED: this end dropped the link to dial again.
   */
  drop(reason: string): void {
    const socket = this.#socket;
    if (!socket) return;
    this.#lost(socket, { code: CloseCode.LINK_DROPPED, reason });
  }

  #wire(socket: WebSocketLike): void {
    socket.onmessage = (event: unknown) => {
      if (this.#socket !== socket) return;
      const data = field(event, "data");
      if (data === HEARTBEAT_RESPONSE) {
        this.#heartbeatAnswered = true;
        if (this.#heartbeatTimer !== null) clearTimeout(this.#heartbeatTimer);
        this.#heartbeatTimer = null;
        return;
      }
      if (typeof data === "string") this.peer.receive(data);
      else if (data instanceof ArrayBuffer) this.peer.receive(data);
      else if (ArrayBuffer.isView(data)) this.peer.receive(new TextDecoder().decode(data));
    };
    socket.onclose = (event: unknown) => {
      const code = field(event, "code");
      const reason = field(event, "reason");
      this.#lost(socket, {
        code: typeof code === "number" ? code : ABNORMAL_CLOSURE,
        reason: typeof reason === "string" ? reason : "",
      });
    };
    // An error is followed by a close; the close is what counts.
    socket.onerror = () => undefined;
  }

  #lost(socket: WebSocketLike, info: CloseInfo): void {
    if (this.#socket !== socket) return;
    this.#socket = null;
    this.#stopHeartbeat();
    this.#detach(socket);
    try {
      socket.close();
    } catch {
      // Already closed.
    }
    this.peer.closed(`connection lost (${info.code}${info.reason ? `: ${info.reason}` : ""})`);
    this.handlers.onLost(info);
  }

  #detach(socket: WebSocketLike): void {
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    // Keep a no-op error handler: `ws` throws on an unhandled late 'error'.
    socket.onerror = () => undefined;
  }

  #startHeartbeat(socket: WebSocketLike): void {
    this.#stopHeartbeat();
    const interval = this.options.heartbeatIntervalMs;
    if (interval <= 0) return;
    // The heartbeat frame is answered by the room object without waking it
    // (HEARTBEAT_REQUEST/RESPONSE): idle rooms stay hibernated.
    this.#heartbeat = setInterval(() => {
      // One heartbeat in flight at a time: its own timer decides.
      if (this.#socket !== socket || this.#heartbeatTimer !== null) return;
      this.#heartbeatAnswered = false;
      try {
        socket.send(HEARTBEAT_REQUEST);
      } catch {
        return; // Closing: onclose reports it.
      }
      this.#heartbeatTimer = setTimeout(() => {
        this.#heartbeatTimer = null;
        if (!this.#heartbeatAnswered && this.#socket === socket) this.drop("no answer to ping");
      }, this.options.heartbeatTimeoutMs);
    }, interval);
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    if (this.#heartbeatTimer !== null) clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = null;
  }
}
