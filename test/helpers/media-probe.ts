/**
 * What Debian's ffprobe and ffmpeg say about a recorded file: its container,
 * duration and streams, and whether every frame decodes. Not a test file.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { z } from "zod";

const run = promisify(execFile);

const probeOutput = z.object({
  format: z.object({ format_name: z.string(), duration: z.string().optional() }),
  streams: z.array(
    z.object({
      codec_type: z.string(),
      codec_name: z.string(),
      width: z.number().optional(),
      height: z.number().optional(),
    }),
  ),
});

export interface MediaProbe {
  /** e.g. `matroska,webm`. */
  readonly format: string;
  /** Seconds, from the container (written on stop); NaN when the file has none. */
  readonly durationSec: number;
  readonly streams: ReadonlyArray<{ type: string; codec: string; width?: number; height?: number }>;
  /** The codec names, e.g. `["opus", "vp8"]`, sorted. */
  readonly codecs: readonly string[];
}

export async function probeMedia(file: string): Promise<MediaProbe> {
  const { stdout } = await run(
    "ffprobe",
    ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", file],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const parsed = probeOutput.parse(JSON.parse(stdout));
  const streams = parsed.streams.map((s) => ({
    type: s.codec_type,
    codec: s.codec_name,
    ...(s.width === undefined ? {} : { width: s.width }),
    ...(s.height === undefined ? {} : { height: s.height }),
  }));
  return {
    format: parsed.format.format_name,
    durationSec: parsed.format.duration === undefined ? Number.NaN : Number(parsed.format.duration),
    streams,
    codecs: streams.map((s) => s.codec).sort(),
  };
}

/**
 * ffmpeg's null muxer complaining that two packets of a stream carry the same
 * timestamp: about the file's timestamps, not its frames (every frame still
 * decodes). KMS 7.2's own WebM writer produces the odd repeated timestamp.
 */
const REPEATED_TIMESTAMP = /non monotonically increasing dts to muxer/;

/**
 * Decodes every frame of every stream; what ffmpeg reports as errors (empty
 * when the file is clean). `allowRepeatedTimestamps` drops the null muxer's
 * repeated-timestamp lines (for KMS's files), nothing else.
 */
export async function decodeErrors(file: string, options: { allowRepeatedTimestamps?: boolean } = {}): Promise<string> {
  const { stderr } = await run("ffmpeg", ["-nostdin", "-v", "error", "-i", file, "-f", "null", "-"], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return stderr
    .split("\n")
    .filter((line) => line.trim() !== "" && !(options.allowRepeatedTimestamps && REPEATED_TIMESTAMP.test(line)))
    .join("\n");
}

/** Frames ffmpeg decodes from the file's video stream. */
export async function videoFrameCount(file: string): Promise<number> {
  const { stdout } = await run(
    "ffprobe",
    [
      "-v",
      "error",
      "-select_streams",
      "v:0",
      "-count_frames",
      "-show_entries",
      "stream=nb_read_frames",
      "-of",
      "csv=p=0",
      file,
    ],
    { maxBuffer: 1024 * 1024 },
  );
  return Number(stdout.trim());
}
