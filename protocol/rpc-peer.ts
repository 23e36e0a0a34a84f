/**
 * One JSON-RPC 2.0 request/response helper for every side that *sends*
 * requests over a WebSocket: the web client library, the bridge's links and
 * tests. A pending map keyed by id, a timeout per request, and reject-all when
 * the transport closes (mediasoup's Channel does the same).
 *
 * Transport-agnostic: the owner feeds frames in with `receive()` and reports
 * the end of the transport with `closed()`.
 */
import { JsonRpcCode, rpcError, RoomCode, type RpcError } from "./errors.ts";
import {
  decodeFrame,
  encodeError,
  encodeNotification,
  encodeRequest,
  encodeResult,
  type RequestId,
} from "./jsonrpc.ts";

export interface RpcTransport {
  send(frame: string): void;
}

/** A JSON-RPC error answer, as an exception. */
export class RpcRequestError extends Error {
  readonly code: number;
  readonly data: unknown;
  constructor(error: RpcError) {
    super(error.message);
    this.name = "RpcRequestError";
    this.code = error.code;
    this.data = error.data;
  }
}

export interface RpcPeerOptions {
  /** Per-request timeout; 0 disables it. */
  readonly timeoutMs?: number;
  /** Incoming notifications (requests without an id). */
  readonly onNotification?: (method: string, params: unknown) => void;
  /** Incoming requests; throw an RpcRequestError (or return a rejected promise) to answer with an error. */
  readonly onRequest?: (method: string, params: unknown) => unknown | Promise<unknown>;
  /**
   * Prefix of the ids `request` picks (`<prefix><n>`, strings); unset: numbers from 1. A peer that
   * may be rebuilt while the other side still answers its requests (a Durable Object evicted
   * mid-request) uses a per-instance random prefix, so an answer meant for an earlier instance can
   * never settle a request of this one that reused its id.
   */
  readonly idPrefix?: string;
  /**
   * Responses whose id this peer is not waiting for: answers to `sendRequest` frames, or to a
   * request of an earlier peer on the same link. Unset: they are dropped.
   */
  readonly onUntrackedResponse?: (id: RequestId, outcome: RpcOutcome) => void;
}

/** A response, as data: the result, or the error. */
export type RpcOutcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: RpcError };

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: ReturnType<typeof setTimeout> | null;
  readonly method: string;
}

export class RpcPeer {
  readonly transport: RpcTransport;
  readonly options: RpcPeerOptions;
  readonly pending = new Map<RequestId, Pending>();
  nextId = 1;
  closedWith: Error | null = null;

  constructor(transport: RpcTransport, options: RpcPeerOptions = {}) {
    this.transport = transport;
    this.options = options;
  }

  request<T = unknown>(method: string, params?: unknown, timeoutMs = this.options.timeoutMs ?? 0): Promise<T> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const n = this.nextId++;
    const id: RequestId = this.options.idPrefix === undefined ? n : `${this.options.idPrefix}${n}`;
    return new Promise<T>((resolve, reject) => {
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.pending.delete(id);
              reject(
                new RpcRequestError(rpcError(RoomCode.TRANSPORT_RESPONSE, `${method} timed out after ${timeoutMs} ms`)),
              );
            }, timeoutMs)
          : null;
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer, method });
      try {
        this.transport.send(encodeRequest(id, method, params ?? {}));
      } catch (error) {
        this.settle(id);
        reject(new RpcRequestError(rpcError(RoomCode.TRANSPORT_REQUEST, `could not send ${method}: ${String(error)}`)));
      }
    });
  }

  /**
   * Sends a request under the caller's own id and does not wait for it: no pending entry, no
   * timeout. Its answer goes to `onUntrackedResponse`, on this peer or on whichever peer receives
   * it (the caller keeps the id somewhere that outlives this peer). Throws an RpcRequestError when
   * the peer is closed or the frame cannot be sent.
   */
  sendRequest(id: RequestId, method: string, params?: unknown): void {
    if (this.closedWith) throw this.closedWith;
    if (this.pending.has(id)) {
      throw new RpcRequestError(rpcError(RoomCode.TRANSPORT_REQUEST, `request id ${String(id)} is already in use`));
    }
    try {
      this.transport.send(encodeRequest(id, method, params ?? {}));
    } catch (error) {
      throw new RpcRequestError(rpcError(RoomCode.TRANSPORT_REQUEST, `could not send ${method}: ${String(error)}`));
    }
  }

  notify(method: string, params?: unknown): void {
    this.transport.send(encodeNotification(method, params ?? {}));
  }

  /** Feed one incoming frame. */
  receive(frame: string | ArrayBuffer): void {
    const message = decodeFrame(frame);
    switch (message.kind) {
      case "response": {
        if (message.id === null) return;
        const pending = this.settle(message.id);
        if (!pending) {
          const outcome: RpcOutcome = message.error
            ? { ok: false, error: message.error }
            : { ok: true, value: message.result };
          this.options.onUntrackedResponse?.(message.id, outcome);
          return;
        }
        if (message.error) pending.reject(new RpcRequestError(message.error));
        else pending.resolve(message.result);
        return;
      }
      case "notification":
        this.options.onNotification?.(message.method, message.params);
        return;
      case "request":
        void this.answer(message.id, message.method, message.params);
        return;
      case "invalid":
        // Answer what can be answered; a peer that sends garbage learns why.
        this.trySend(encodeError(message.id, message.error));
        return;
    }
  }

  /** The transport ended: every pending request fails now, later ones at once. */
  closed(reason = "connection closed"): void {
    this.closedWith = new RpcRequestError(rpcError(RoomCode.TRANSPORT, reason));
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(this.closedWith);
  }

  /** Accept requests again on a new transport (after a reconnection). */
  reopen(): void {
    this.closedWith = null;
  }

  settle(id: RequestId): Pending | undefined {
    const pending = this.pending.get(id);
    if (!pending) return undefined;
    this.pending.delete(id);
    if (pending.timer) clearTimeout(pending.timer);
    return pending;
  }

  async answer(id: RequestId, method: string, params: unknown): Promise<void> {
    const handler = this.options.onRequest;
    if (!handler) {
      this.trySend(encodeError(id, rpcError(JsonRpcCode.METHOD_NOT_FOUND, `Method not found: ${method}`)));
      return;
    }
    try {
      const result = await handler(method, params);
      this.trySend(encodeResult(id, result ?? {}));
    } catch (error) {
      const rpc: RpcError =
        error instanceof RpcRequestError
          ? { code: error.code, message: error.message, ...(error.data === undefined ? {} : { data: error.data }) }
          : rpcError(RoomCode.GENERIC, error instanceof Error ? error.message : String(error));
      this.trySend(encodeError(id, rpc));
    }
  }

  trySend(frame: string): void {
    try {
      this.transport.send(frame);
    } catch {
      // The transport is going away; `closed()` follows.
    }
  }
}
