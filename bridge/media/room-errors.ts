/**
 * How a media command's failure reaches the room: every error becomes the
 * JSON-RPC error of protocol/errors.ts's media codes.
 */
import { type ErrorCode, RoomCode, rpcError } from "../../protocol/errors.ts";
import { RpcRequestError } from "../../protocol/rpc-peer.ts";
import { MediaServerError } from "./media-server.ts";

/** A command overtaken by a later one (or by the room's release): it cleans up and fails. */
export class Superseded extends Error {}

const FAILURE_CODES: Record<MediaServerError["failure"], ErrorCode> = {
  sdp: RoomCode.MEDIA_SDP,
  ice: RoomCode.MEDIA_WEBRTC_ENDPOINT,
  unsupported: RoomCode.MEDIA_GENERIC,
  unreachable: RoomCode.MEDIA_GENERIC,
  timeout: RoomCode.MEDIA_GENERIC,
  gone: RoomCode.MEDIA_ENDPOINT,
  other: RoomCode.MEDIA_GENERIC,
};

/** Any failure as the JSON-RPC error the room gets (media codes of errors.ts). */
export function toRpcError(error: unknown): RpcRequestError {
  if (error instanceof RpcRequestError) return error;
  if (error instanceof MediaServerError) {
    return new RpcRequestError(rpcError(FAILURE_CODES[error.failure], error.message));
  }
  if (error instanceof Superseded) {
    return new RpcRequestError(rpcError(RoomCode.MEDIA_GENERIC, `Media command abandoned: ${error.message}`));
  }
  return new RpcRequestError(rpcError(RoomCode.MEDIA_GENERIC, error instanceof Error ? error.message : String(error)));
}

/** A refusal the room reads as "no such endpoint or publisher" (303). */
export function endpointError(message: string): RpcRequestError {
  return new RpcRequestError(rpcError(RoomCode.MEDIA_ENDPOINT, message));
}
