/**
 * Media recovery: publish / subscribe again when the media of a stream is
 * gone while the session itself is fine. Three triggers:
 *
 * - the server's `mediaError`: it names the streams whose media is gone
 *   (`streams`, e.g. `alice_webcam`), and exactly those are recovered; when it
 *   does not name any (an older server, or a room-wide failure), every stream
 *   the application wants live is;
 * - a stream's ICE failed;
 * - after a reconnection: what was in flight during the drop, or whose ICE failed.
 *
 * Recovering a stream releases it on the server first (whatever the server
 * may still hold for it), then negotiates it afresh: `stream-recovered`.
 */
import type { RoomMethod, RoomResult } from "../../../protocol/room.ts";
import type { RequestInput } from "./connection.ts";
import { messageOf } from "./errors.ts";
import type { RoomEmit } from "./room-types.ts";
import type { Stream, StreamStatus } from "./stream.ts";

/** What the recovery decision reads of a stream. */
export interface RecoverableStream {
  readonly status: StreamStatus;
  getGlobalID(): string;
}

/**
 * The streams to recover after a `mediaError`: among the wanted ones that are
 * live (a stream still negotiating gets its own answer or error), those the
 * server named, or all of them when it named none.
 */
export function streamsToRecover<S extends RecoverableStream>(wanted: readonly S[], named?: readonly string[]): S[] {
  const live = wanted.filter((stream) => stream.status === "live");
  if (!named) return live;
  const ids = new Set(named);
  return live.filter((stream) => ids.has(stream.getGlobalID()));
}

/** The streams to negotiate again after a reconnection: idle ones (cut in flight) and those whose ICE failed. */
export function streamsToRestore(wanted: readonly Stream[]): Stream[] {
  return wanted.filter((s) => s.status === "idle" || s.getWebRtcPeer()?.iceConnectionState === "failed");
}

/** What recovery needs from its Room. */
export interface RecoveryContext {
  /** Off: the application handles lost media itself (`autoRecoverMedia: false`). */
  readonly enabled: boolean;
  readonly emit: RoomEmit;
  request<M extends RoomMethod>(method: M, params: RequestInput<M>): Promise<RoomResult<M>>;
  connected(): boolean;
  wantedStreams(): Stream[];
}

export class MediaRecovery {
  readonly #ctx: RecoveryContext;
  readonly #recovering = new Set<Stream>();

  constructor(ctx: RecoveryContext) {
    this.#ctx = ctx;
  }

  /** Whether `stream` is being negotiated again (its success is `stream-recovered`, not `stream-published`). */
  isRecovering(stream: Stream): boolean {
    return this.#recovering.has(stream);
  }

  /** The server's `mediaError`, with the stream ids it named (if any). */
  mediaError(named: readonly string[] | undefined): void {
    if (!this.#ctx.enabled || !this.#ctx.connected()) return;
    for (const stream of streamsToRecover(this.#ctx.wantedStreams(), named)) void this.recover(stream);
  }

  iceFailed(stream: Stream): void {
    if (this.#ctx.enabled && this.#ctx.connected()) void this.recover(stream);
  }

  /** After a resume: negotiate again what was in flight during the drop, or whose ICE failed. */
  resumed(): void {
    if (!this.#ctx.enabled) return;
    for (const stream of streamsToRestore(this.#ctx.wantedStreams())) void this.recover(stream);
  }

  /** Releases the stream on the server (ignoring errors: it may hold nothing), then negotiates it again. */
  async recover(stream: Stream): Promise<void> {
    if (this.#recovering.has(stream) || stream.disposed) return;
    const ctx = this.#ctx;
    this.#recovering.add(stream);
    try {
      const undo = stream.local
        ? ctx.request("unpublishVideo", stream.unpublishParams())
        : ctx.request("unsubscribeFromVideo", { sender: stream.getGlobalID() });
      await undo.catch(() => undefined);
      stream.reset();
      if (stream.disposed || !ctx.connected()) return;
      await stream.negotiate();
    } catch (error) {
      if (!stream.disposed && ctx.connected()) {
        ctx.emit("error-media", { error: `Could not restore ${stream.getGlobalID()}: ${messageOf(error)}`, stream });
      }
    } finally {
      this.#recovering.delete(stream);
    }
  }
}
