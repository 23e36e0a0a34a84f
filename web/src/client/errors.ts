/**
 * Whose error is it? Two kinds reach the application:
 *
 * - `RpcRequestError` (from protocol/rpc-peer.ts): the server answered with an
 *   error, or the transport failed (no answer, connection lost). It carries
 *   the protocol's `code` (104 name taken, 301 media, 803 transport…).
 * - `RoomClientError` (here): the library refused a call on its own, before
 *   anything was sent (wrong order, wrong kind of stream, a released stream,
 *   something missing in this environment). It has no protocol code; its
 *   `reason` says what was wrong.
 */
import { RoomCode, rpcError } from "../../../protocol/errors.ts";
import { RpcRequestError } from "../../../protocol/rpc-peer.ts";

export type RoomClientErrorReason =
  /** A local-stream call on a remote stream, or the reverse (e.g. `publish()` on a remote stream). */
  | "wrong-stream-kind"
  /** `publish()` before `init()` gave the stream its media. */
  | "not-initialized"
  /** `publish()` / `subscribe()` while the stream is already published / received (or on its way). */
  | "already-active"
  /** A mirror stream (`mirrorLocalStream`) cannot be published. */
  | "mirror-stream"
  /** The stream was disposed: it cannot be used again. */
  | "disposed"
  /** The stream was released (unpublished, unsubscribed, disposed) while the call was under way. */
  | "cancelled"
  /** `connect()` on a Room that already ended, or `leave()` during the join. */
  | "room-closed"
  /** A KurentoRoom call that needs a room before `Room(options)` was called. */
  | "no-room"
  /** Something this environment lacks (WebSocket, WebRTC, getUserMedia). */
  | "unsupported"
  /** `sendData()` without a DataChannel (`data: true`), or while it is not open. */
  | "data-channel"
  /** A playback call named an element that is not in the page. */
  | "no-element";

/** The library refused a call on its own (nothing reached the server). */
export class RoomClientError extends Error {
  readonly reason: RoomClientErrorReason;

  constructor(reason: RoomClientErrorReason, message: string) {
    super(message);
    this.name = "RoomClientError";
    this.reason = reason;
  }
}

/** A stream operation whose stream was released meanwhile. */
export function cancelled(what: string): RoomClientError {
  return new RoomClientError("cancelled", `${what} was cancelled: the stream was released meanwhile`);
}

/** The text of any failure. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Any failure as an RpcRequestError (one that is not keeps its message, with the generic code 999). */
export function asRpcError(error: unknown): RpcRequestError {
  if (error instanceof RpcRequestError) return error;
  return new RpcRequestError(rpcError(RoomCode.GENERIC, messageOf(error)));
}
