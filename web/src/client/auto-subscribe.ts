/**
 * The automatic subscription (`subscribeToStreams`, the default): receives a
 * newly announced stream, and tries again (0.5 s, 1 s, 2 s, 4 s) when the
 * media side failed for a reason that may pass (a busy or restarting media
 * server). A stream that is gone (101, 102, 105) or a refused call is final:
 * `error-media`.
 */
import { RoomCode } from "../../../protocol/errors.ts";
import { RpcRequestError } from "../../../protocol/rpc-peer.ts";
import { messageOf, RoomClientError } from "./errors.ts";
import type { RoomEmit } from "./room-types.ts";
import type { Stream } from "./stream.ts";

const RETRIES = 4;
const FIRST_RETRY_MS = 500;

const FINAL_CODES: ReadonlySet<number> = new Set([
  RoomCode.USER_GENERIC,
  RoomCode.USER_NOT_FOUND,
  RoomCode.USER_NOT_STREAMING,
]);

/** Whether a failed subscription is worth another try. */
export function mayRetrySubscribe(error: unknown): boolean {
  // A subscription cut short by a release is tried again (if the stream is still idle and wanted by then).
  if (error instanceof RoomClientError) return error.reason === "cancelled";
  return !(error instanceof RpcRequestError && FINAL_CODES.has(error.code));
}

export function autoSubscribe(stream: Stream, connected: () => boolean, emit: RoomEmit, attempt = 0): void {
  const pending = (): boolean => !stream.disposed && connected() && stream.status === "idle";
  stream.subscribe().catch((error: unknown) => {
    if (!pending()) return;
    if (mayRetrySubscribe(error) && attempt < RETRIES) {
      setTimeout(
        () => {
          if (pending()) autoSubscribe(stream, connected, emit, attempt + 1);
        },
        FIRST_RETRY_MS * 2 ** attempt,
      );
      return;
    }
    emit("error-media", { error: `Could not receive ${stream.getGlobalID()}: ${messageOf(error)}`, stream });
  });
}
