/**
 * Audio levels from WebAudio: one AudioContext per Room (browsers limit how
 * many a page may hold), one AnalyserNode per stream with audio, read as the
 * RMS of its latest samples. Nothing here decides who speaks (speaking.ts
 * does); where WebAudio is missing (Node) there is no factory at all, and
 * the Room's speaker detection stays off.
 */
import type { LevelSource } from "./speaking.ts";

const FFT_SIZE = 1024;

export class AudioLevels {
  readonly #Context: typeof AudioContext;
  #context: AudioContext | null = null;

  private constructor(Context: typeof AudioContext) {
    this.#Context = Context;
  }

  /** null where WebAudio is not available. */
  static create(): AudioLevels | null {
    const Context = (globalThis as { AudioContext?: typeof AudioContext }).AudioContext;
    return Context ? new AudioLevels(Context) : null;
  }

  /** A level source for `media`'s audio, or null when it has no live audio track. */
  source(media: MediaStream): LevelSource | null {
    if (!media.getAudioTracks().some((track) => track.readyState === "live")) return null;
    let context = this.#context;
    if (!context) {
      context = new this.#Context();
      this.#context = context;
    }
    // Autoplay policies may start the context suspended; the join click usually lets it run.
    if (context.state === "suspended") context.resume().catch(() => undefined);
    const input = context.createMediaStreamSource(media);
    const analyser = context.createAnalyser();
    analyser.fftSize = FFT_SIZE;
    // Analysed only, never connected to the speakers: the <video> elements play the sound.
    input.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    return {
      level: () => {
        if (context.state === "suspended") context.resume().catch(() => undefined);
        analyser.getFloatTimeDomainData(samples);
        return rms(samples);
      },
      close: () => {
        input.disconnect();
      },
    };
  }

  close(): void {
    this.#context?.close().catch(() => undefined);
    this.#context = null;
  }
}

export function rms(samples: Float32Array): number {
  let sum = 0;
  for (const sample of samples) sum += sample * sample;
  return samples.length === 0 ? 0 : Math.sqrt(sum / samples.length);
}
