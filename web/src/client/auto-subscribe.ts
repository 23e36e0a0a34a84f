/**
 * The automatic subscription (`subscribeToStreams`, the default): receives a
 * newly announced stream, and tries again (0.5 s, 1 s, 2 s, 4 s) when the
 * media side failed for a reason that may pass (a busy or restarting media
 * server). A stream that is gone (101, 102, 105) or a refused call is final:
 * `error-media`.
 *
 * A failed try may still hold a subscription on the server (a request that
 * timed out here while the server went on with it): each retry releases it
 * first (`unsubscribeFromVideo`, errors ignored), or the server would refuse
 * the new one. A stream the application stopped wanting meanwhile (its
 * `unsubscribe()`) is not tried again.
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

/** What the automatic subscription needs from its Room. */
export interface AutoSubscribeContext {
  connected(): boolean;
  readonly emit: RoomEmit;
  /** `unsubscribeFromVideo` for the stream (its result does not matter). */
  release(stream: Stream): Promise<unknown>;
}

export function autoSubscribe(stream: Stream, ctx: AutoSubscribeContext, attempt = 0): void {
  const pending = (): boolean =>
    !stream.disposed && ctx.connected() && stream.status === "idle" && (attempt === 0 || stream.wanted);
  const released = attempt === 0 ? Promise.resolve() : ctx.release(stream).then(noop, noop);
  void released.then(() => {
    if (!pending()) return;
    stream.subscribe().catch((error: unknown) => {
      if (!pending()) return;
      if (mayRetrySubscribe(error) && attempt < RETRIES) {
        setTimeout(
          () => {
            if (pending()) autoSubscribe(stream, ctx, attempt + 1);
          },
          FIRST_RETRY_MS * 2 ** attempt,
        );
        return;
      }
      ctx.emit("error-media", { error: `Could not receive ${stream.getGlobalID()}: ${messageOf(error)}`, stream });
    });
  });
}

function noop(): void {}
