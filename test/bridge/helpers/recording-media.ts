/**
 * One recording through the bridge's own room media, with real media: a
 * werift publisher (video only, as a camera without a microphone) sends
 * real VP8 to a media server (KMS or the embedded one), the room records
 * it with `record`, ends it (`stopRecording`, or the stream ends), and the
 * bridge's upload queue delivers the file to a local stand-in of the
 * worker's upload API. What arrived is probed with ffprobe. Shared by the
 * per-back-end tests in test/integration/bridge-recording*.test.ts.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RTCRtpTransceiver, RtpHeader, RtpPacket } from "werift";
import { DEFAULT_HAT } from "../../../bridge/config.ts";
import { createLogger } from "../../../bridge/log.ts";
import { KmsPool } from "../../../bridge/media/kms-pool.ts";
import { connectKurentoMediaServer } from "../../../bridge/media/kurento-media-server.ts";
import { RoomMedia } from "../../../bridge/media/room-media.ts";
import { RecordingPaths } from "../../../bridge/recordings/journal.ts";
import { RecordingUploads } from "../../../bridge/recordings/uploads.ts";
import type { MediaEvent } from "../../../protocol/bridge.ts";
import type { CompletedFile } from "./upload-server.ts";
import { UploadServer } from "./upload-server.ts";
import { waitUntil } from "./fake-worker.ts";
import { createClientPeer, stripCandidates } from "./peers.ts";
import { vp8Frames } from "../../integration/vp8-media.ts";

const WAIT_MS = 60_000;
const FPS = 15;
const CHUNK = 1000;
const RECORDING = "rec_mediatest0001";
const TOKEN = "media-test-upload-token";

export interface Probe {
  readonly formatName: string;
  /** NaN when the file does not say (a file cut by a crash has no duration element). */
  readonly durationSeconds: number;
  /** Video frames a decoder read. */
  readonly frames: number;
  readonly codec: string;
  readonly width: number;
  readonly height: number;
}

export interface RecordedRun {
  /** From `record`'s answer to the end (`stopRecording`'s answer, or the unpublish). */
  readonly wallMs: number;
  readonly file: CompletedFile;
  readonly probe: Probe;
  /** Keyframe requests the publisher answered. */
  readonly plis: number;
  readonly events: MediaEvent[];
}

/**
 * VP8 at 15 fps from a looping clip whose keyframes are every 15 frames; a
 * keyframe request restarts the clip (its first frame is a keyframe), as a
 * browser's encoder answers a PLI with a keyframe.
 */
export function sendVp8(transceiver: RTCRtpTransceiver): { stop(): void; plis(): number } {
  const frames = vp8Frames();
  let sequenceNumber = 1000;
  let timestamp = 5000;
  let index = 0;
  let plis = 0;
  const subscription = transceiver.sender.onPictureLossIndication.subscribe(() => {
    plis += 1;
    index = 0;
  });
  const timer = setInterval(() => {
    const frame = frames[index % frames.length];
    if (!frame) return;
    index += 1;
    timestamp = (timestamp + 90_000 / FPS) >>> 0;
    for (let start = 0; start < frame.length; start += CHUNK) {
      sequenceNumber = (sequenceNumber + 1) & 0xffff;
      const header = new RtpHeader({
        payloadType: 120,
        sequenceNumber,
        timestamp,
        marker: start + CHUNK >= frame.length,
      });
      const payload = Buffer.concat([Buffer.from([start === 0 ? 0x10 : 0x00]), frame.subarray(start, start + CHUNK)]);
      transceiver.sender.sendRtp(new RtpPacket(header, payload)).catch(() => {});
    }
  }, 1000 / FPS);
  return {
    stop: () => {
      clearInterval(timer);
      subscription.unSubscribe();
    },
    plis: () => plis,
  };
}

export function ffprobe(path: string): Probe {
  const output = execFileSync(
    "ffprobe",
    [
      ...["-v", "error", "-of", "json", "-count_frames"],
      ...[
        "-show_entries",
        "format=format_name,duration:stream=codec_name,codec_type,width,height,nb_read_frames",
        path,
      ],
    ],
    { encoding: "utf8", timeout: 30_000 },
  );
  const parsed = JSON.parse(output) as {
    format?: { format_name?: string; duration?: string };
    streams?: Array<{
      codec_name?: string;
      codec_type?: string;
      width?: number;
      height?: number;
      nb_read_frames?: string;
    }>;
  };
  const video = parsed.streams?.find((stream) => stream.codec_type === "video");
  return {
    formatName: parsed.format?.format_name ?? "",
    durationSeconds: Number(parsed.format?.duration ?? Number.NaN),
    frames: Number(video?.nb_read_frames ?? 0),
    codec: video?.codec_name ?? "",
    width: video?.width ?? 0,
    height: video?.height ?? 0,
  };
}

export interface RecordOptions {
  readonly seconds: number;
  /**
   * How the file ends: `stopRecording`; `unpublish` (the stream ends); or
   * `crash`: the bridge dies (its upload queue stops, its room is never
   * heard of again) and `crash()` takes the media server down too, then a
   * new bridge's queue finds the journal on disk and delivers the file.
   */
  readonly end: "stopRecording" | "unpublish" | "crash";
  readonly crash?: () => Promise<void>;
}

/** Publishes, records for `seconds`, ends the file (`end`), and returns what the upload API received, probed. */
export async function recordThroughBridge(mediaUrl: string, options: RecordOptions): Promise<RecordedRun> {
  const dir = mkdtempSync(join(tmpdir(), "bridge-recording-media-"));
  const log = createLogger({ level: process.env.RECORDING_TEST_LOG === "1" ? "debug" : "silent" });
  const server = await UploadServer.start();
  server.tokens.set(RECORDING, TOKEN);
  let uploads = new RecordingUploads({ dir, workerUrl: server.url, keepLocal: false, log });
  let crashed = false;
  const pool = new KmsPool({
    kms: [{ uri: mediaUrl, limit: 10 }],
    factory: connectKurentoMediaServer,
    requestTimeoutMs: 20_000,
    lostAfterMs: 5000,
    log,
    onLost: () => undefined,
  });
  const events: MediaEvent[] = [];
  const peer = createClientPeer();
  let media: ReturnType<typeof sendVp8> | undefined;
  // The server's candidates wait until the peer has the answer they belong to.
  let answered = false;
  const early: Array<{ candidate: string; sdpMid?: string; sdpMLineIndex: number }> = [];
  const addRemote = (candidate: { candidate: string; sdpMid?: string; sdpMLineIndex: number }): void => {
    if (!answered) early.push(candidate);
    else void peer.addIceCandidate(candidate).catch(() => undefined);
  };
  const room = new RoomMedia({
    room: "recorded-room",
    pool,
    hat: { url: "http://127.0.0.1:1/hat.png", ...DEFAULT_HAT },
    emit: (event) => {
      events.push(event);
      if (event.event === "iceCandidate" && event.endpoint === "alice") {
        addRemote({
          candidate: event.candidate,
          ...(event.sdpMid ? { sdpMid: event.sdpMid } : {}),
          sdpMLineIndex: event.sdpMLineIndex,
        });
      }
    },
    log,
    recordings: { paths: new RecordingPaths(dir, dir), uploads },
  });
  try {
    await pool.settle(WAIT_MS);
    const video = peer.addTransceiver("video", { direction: "sendonly" });
    peer.onIceCandidate.subscribe((candidate) => {
      if (!candidate) return;
      const init = candidate.toJSON();
      void room.handlers
        .addIceCandidate({
          user: "alice",
          endpoint: "alice",
          candidate: init.candidate ?? "",
          sdpMid: init.sdpMid ?? null,
          sdpMLineIndex: init.sdpMLineIndex ?? 0,
        })
        .catch(() => undefined);
    });
    await peer.setLocalDescription(await peer.createOffer());
    const { sdpAnswer } = await room.handlers.publish({
      user: "alice",
      sdpOffer: stripCandidates(peer.localDescription?.sdp ?? ""),
      loopback: false,
      dataChannels: false,
    });
    await peer.setRemoteDescription({ type: "answer", sdp: sdpAnswer });
    answered = true;
    for (const candidate of early.splice(0)) addRemote(candidate);
    await waitUntil(() => peer.connectionState === "connected", WAIT_MS, "the publisher's connection");
    media = sendVp8(video);
    // Media flows before the recording starts, as in a call already under way.
    await new Promise((resolve) => setTimeout(resolve, 1000));

    const file = "001-alice-webcam.webm";
    const startedAt = Date.now();
    await room.handlers.record({
      recording: RECORDING,
      user: "alice",
      stream: "webcam",
      file,
      token: TOKEN,
      startedAt,
    });
    const recordingFrom = Date.now();
    await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000));
    let wallMs: number;
    if (options.end === "stopRecording") {
      await room.handlers.stopRecording({ recording: RECORDING });
      wallMs = Date.now() - recordingFrom;
    } else if (options.end === "unpublish") {
      wallMs = Date.now() - recordingFrom;
      await room.handlers.unpublish({ user: "alice" });
    } else {
      wallMs = Date.now() - recordingFrom;
      crashed = true;
      await uploads.stop();
      await options.crash?.();
      media.stop();
      // The bridge started again: its queue finds what the dead one left.
      uploads = new RecordingUploads({ dir, workerUrl: server.url, keepLocal: false, log, cutQuietMs: 1000 });
      await uploads.resumeFromDisk();
    }
    await waitUntil(() => server.completed.length > 0 || server.failures.length > 0, WAIT_MS, "the upload");
    if (server.failures.length) throw new Error(`the file failed: ${server.failures[0]?.reason}`);
    const completed = server.completed[0];
    if (!completed) throw new Error("no file");
    const probed = join(dir, "probed.webm");
    writeFileSync(probed, completed.data);
    // For a look at the file after the test: RECORDING_TEST_KEEP=<folder>.
    const keep = process.env.RECORDING_TEST_KEEP;
    if (keep) writeFileSync(join(keep, `${options.end}-${Date.now()}.webm`), completed.data);
    return { wallMs, file: completed, probe: ffprobe(probed), plis: media.plis(), events };
  } finally {
    media?.stop();
    await peer.close();
    // A crashed bridge's room is gone with it: nothing of it may touch the files any more.
    if (!crashed) await room.releaseRoom();
    await uploads.stop();
    await pool.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * How far a file's length may be from the wall-clock time between `record`
 * and its end: 10 %, but at least one second. Through the bridge a file
 * starts at the first keyframe after the recorder's own start (KMS reports
 * `Recording` up to ~0.5 s after the command) and KMS drops its last cluster
 * at stop; on a loaded 2-core machine each costs up to ~0.6 s of a 5 s file.
 * The 10 % bound with kurento-client alone is test/conformance/recorder.test.ts.
 */
export function lengthSlackMs(wallMs: number): number {
  return Math.max(wallMs * 0.1, 1000);
}
