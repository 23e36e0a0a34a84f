/**
 * Who is speaking, from audio levels: pure logic, no WebAudio, no timers.
 *
 * A level is a number in [0, 1] (the RMS of one window of samples, about
 * 100 ms). `SpeakingDetector` turns one stream's levels into speaking /
 * silent with hysteresis, so a single click is not speech and a pause
 * between two words is not silence. `ActiveSpeakerSelector` picks the
 * loudest speaking stream and holds its choice for a while, so the main
 * video does not flicker between two people talking at once.
 * `SpeakerMonitor` ties them to a set of level sources; the room feeds it
 * from WebAudio (audio-levels.ts), the unit tests from fake sources.
 */

export interface SpeakingOptions {
  /** A window louder than this counts as voice (RMS, 0–1; default 0.02, about -34 dBFS). */
  readonly threshold?: number;
  /** Consecutive loud windows before a stream is speaking (default 2: ~200 ms). */
  readonly speakAfterWindows?: number;
  /** Quiet time before a speaking stream is silent again (default 500 ms). */
  readonly silentAfterMs?: number;
  /** How often levels are read (default 100 ms). */
  readonly windowMs?: number;
  /** The active speaker changes at most once per this long (default 500 ms: at most ~2/s). */
  readonly minSwitchMs?: number;
}

export const DEFAULT_SPEAKING: Required<SpeakingOptions> = {
  threshold: 0.02,
  speakAfterWindows: 2,
  silentAfterMs: 500,
  windowMs: 100,
  minSwitchMs: 500,
};

export type SpeakingChange = "started" | "stopped" | null;

/** One stream's levels → speaking / silent. */
export class SpeakingDetector {
  readonly #threshold: number;
  readonly #speakAfter: number;
  readonly #silentAfter: number;
  #loud = 0;
  #quiet = 0;
  #speaking = false;
  #level = 0;

  constructor(options: SpeakingOptions = {}) {
    const o = { ...DEFAULT_SPEAKING, ...options };
    this.#threshold = o.threshold;
    this.#speakAfter = Math.max(1, o.speakAfterWindows);
    // Counted in windows: the detector sees one level per window, never a clock.
    this.#silentAfter = Math.max(1, Math.ceil(o.silentAfterMs / o.windowMs));
  }

  get speaking(): boolean {
    return this.#speaking;
  }

  /** The last level fed. */
  get level(): number {
    return this.#level;
  }

  /** Feeds one window's level; says whether speaking started or stopped with it. */
  update(level: number): SpeakingChange {
    this.#level = Number.isFinite(level) ? level : 0;
    if (this.#level > this.#threshold) {
      this.#loud++;
      this.#quiet = 0;
      if (!this.#speaking && this.#loud >= this.#speakAfter) {
        this.#speaking = true;
        return "started";
      }
      return null;
    }
    this.#loud = 0;
    this.#quiet++;
    if (this.#speaking && this.#quiet >= this.#silentAfter) {
      this.#speaking = false;
      return "stopped";
    }
    return null;
  }

  /** Forgets everything (the stream's media changed); says "stopped" if it was speaking. */
  reset(): SpeakingChange {
    const was = this.#speaking;
    this.#loud = 0;
    this.#quiet = 0;
    this.#speaking = false;
    this.#level = 0;
    return was ? "stopped" : null;
  }
}

/**
 * The active speaker: the loudest speaking candidate, null while nobody
 * speaks. It changes at most once per `minSwitchMs`, so two people talking
 * at once, or a speaker's short pause, do not make the main video flicker.
 */
export class ActiveSpeakerSelector<K> {
  readonly #minSwitchMs: number;
  #current: K | null = null;
  #changedAt = Number.NEGATIVE_INFINITY;

  constructor(minSwitchMs = DEFAULT_SPEAKING.minSwitchMs) {
    this.#minSwitchMs = minSwitchMs;
  }

  get current(): K | null {
    return this.#current;
  }

  /**
   * The speaking candidates with their levels at time `now` (ms); returns the
   * new active speaker when it changed, undefined when it did not.
   */
  update(speaking: ReadonlyArray<readonly [K, number]>, now: number): K | null | undefined {
    let loudest: K | null = null;
    let loudestLevel = Number.NEGATIVE_INFINITY;
    for (const [key, level] of speaking) {
      if (level > loudestLevel) {
        loudest = key;
        loudestLevel = level;
      }
    }
    if (loudest === this.#current) return undefined;
    if (now - this.#changedAt < this.#minSwitchMs) return undefined;
    this.#current = loudest;
    this.#changedAt = now;
    return loudest;
  }

  /** A candidate is gone for good: forget it at once if it was the active speaker. */
  remove(key: K, now: number): boolean {
    if (this.#current !== key) return false;
    this.#current = null;
    this.#changedAt = now;
    return true;
  }
}

/** One level reading per call; `close()` releases what it holds. */
export interface LevelSource {
  level(): number;
  close(): void;
}

export interface SpeakerEvents<K> {
  started(key: K): void;
  stopped(key: K): void;
  activeChanged(key: K | null): void;
}

interface Watched {
  readonly media: object;
  readonly source: LevelSource;
  readonly detector: SpeakingDetector;
}

/**
 * A set of keyed level sources (one per stream with audio), read once per
 * window by `tick(now)`: raises speaking changes and active-speaker changes.
 * `watch` again with other media replaces the source (a stream renegotiated).
 */
export class SpeakerMonitor<K> {
  readonly #options: SpeakingOptions;
  readonly #events: SpeakerEvents<K>;
  readonly #watched = new Map<K, Watched>();
  readonly #selector: ActiveSpeakerSelector<K>;

  constructor(events: SpeakerEvents<K>, options: SpeakingOptions = {}) {
    this.#options = options;
    this.#events = events;
    this.#selector = new ActiveSpeakerSelector<K>(options.minSwitchMs ?? DEFAULT_SPEAKING.minSwitchMs);
  }

  get activeSpeaker(): K | null {
    return this.#selector.current;
  }

  isWatching(key: K, media: object): boolean {
    return this.#watched.get(key)?.media === media;
  }

  keys(): K[] {
    return [...this.#watched.keys()];
  }

  isSpeaking(key: K): boolean {
    return this.#watched.get(key)?.detector.speaking ?? false;
  }

  level(key: K): number {
    return this.#watched.get(key)?.detector.level ?? 0;
  }

  watch(key: K, media: object, source: LevelSource, now: number): void {
    if (this.#watched.has(key)) this.unwatch(key, now);
    this.#watched.set(key, { media, source, detector: new SpeakingDetector(this.#options) });
  }

  unwatch(key: K, now: number): void {
    const watched = this.#watched.get(key);
    if (!watched) return;
    this.#watched.delete(key);
    watched.source.close();
    if (watched.detector.reset() === "stopped") this.#events.stopped(key);
    if (this.#selector.remove(key, now)) this.#events.activeChanged(null);
  }

  /** Reads every source once. */
  tick(now: number): void {
    const speaking: Array<[K, number]> = [];
    for (const [key, watched] of this.#watched) {
      const change = watched.detector.update(watched.source.level());
      if (change === "started") this.#events.started(key);
      else if (change === "stopped") this.#events.stopped(key);
      if (watched.detector.speaking) speaking.push([key, watched.detector.level]);
    }
    const active = this.#selector.update(speaking, now);
    if (active !== undefined) this.#events.activeChanged(active);
  }

  /** Releases every source, silently. */
  close(): void {
    for (const watched of this.#watched.values()) watched.source.close();
    this.#watched.clear();
  }
}
