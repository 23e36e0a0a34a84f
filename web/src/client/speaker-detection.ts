/**
 * The Room's active-speaker detection, client-side (it works with any media
 * server): every window (100 ms) it looks at the room's streams, analyses
 * the audio of each one that has some (the local microphone and every
 * received stream), and raises `stream-speaking`, `stream-stopped-speaking`
 * and `active-speaker-changed`. Shared screens are left out: their sound is
 * not somebody talking. Off where WebAudio is missing (Node).
 */
import { AudioLevels } from "./audio-levels.ts";
import type { RoomEmit } from "./room-types.ts";
import { DEFAULT_SPEAKING, SpeakerMonitor, type SpeakingOptions } from "./speaking.ts";
import type { Stream } from "./stream.ts";

export interface SpeakerDetectionContext {
  readonly emit: RoomEmit;
  /** The local streams and every remote stream. */
  streams(): Stream[];
}

export class SpeakerDetection {
  readonly #ctx: SpeakerDetectionContext;
  readonly #levels: AudioLevels;
  readonly #monitor: SpeakerMonitor<Stream>;
  readonly #windowMs: number;
  #timer: ReturnType<typeof setInterval> | null = null;

  private constructor(ctx: SpeakerDetectionContext, levels: AudioLevels, options: SpeakingOptions) {
    this.#ctx = ctx;
    this.#levels = levels;
    this.#windowMs = options.windowMs ?? DEFAULT_SPEAKING.windowMs;
    this.#monitor = new SpeakerMonitor<Stream>(
      {
        started: (stream) => ctx.emit("stream-speaking", { stream }),
        stopped: (stream) => ctx.emit("stream-stopped-speaking", { stream }),
        activeChanged: (stream) => ctx.emit("active-speaker-changed", { stream }),
      },
      options,
    );
  }

  /** null when turned off (`false`) or where WebAudio is missing. */
  static create(options: boolean | SpeakingOptions | undefined, ctx: SpeakerDetectionContext): SpeakerDetection | null {
    if (options === false) return null;
    const levels = AudioLevels.create();
    if (!levels) return null;
    return new SpeakerDetection(ctx, levels, options === true || options === undefined ? {} : options);
  }

  get activeSpeaker(): Stream | null {
    return this.#monitor.activeSpeaker;
  }

  isSpeaking(stream: Stream): boolean {
    return this.#monitor.isSpeaking(stream);
  }

  /** The stream's last audio level (RMS, 0–1), 0 when it is not analysed. */
  level(stream: Stream): number {
    return this.#monitor.level(stream);
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.#tick(), this.#windowMs);
  }

  /** Stops and releases the AudioContext (the stay is over). */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#monitor.close();
    this.#levels.close();
  }

  #tick(): void {
    const now = performance.now();
    const wanted = new Map<Stream, MediaStream>();
    for (const stream of this.#ctx.streams()) {
      const media = audioOf(stream);
      if (media) wanted.set(stream, media);
    }
    for (const stream of this.#monitor.keys()) {
      if (!wanted.has(stream)) this.#monitor.unwatch(stream, now);
    }
    for (const [stream, media] of wanted) {
      if (this.#monitor.isWatching(stream, media)) continue;
      // No live audio track yet (or ever): looked at again next window.
      const source = this.#levels.source(media);
      if (source) this.#monitor.watch(stream, media, source, now);
      else this.#monitor.unwatch(stream, now);
    }
    this.#monitor.tick(now);
  }
}

/** The media whose sound is this stream's voice: the microphone for a local stream, the received media for a remote one. */
function audioOf(stream: Stream): MediaStream | null {
  if (stream.disposed || stream.kind === "screen" || stream.isLocalMirrored()) return null;
  const media = stream.local ? stream.getWrStream() : stream.getRemoteMediaStream();
  if (!media || media.getAudioTracks().length === 0) return null;
  return media;
}
