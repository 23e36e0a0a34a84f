/**
 * RecorderEndpoint side by side: the same kurento-client calls against the
 * back end MEDIA_BACKEND names (`integration`: the embedded media server;
 * `integration-kms`: a real KMS from KMS_HOME), a werift publisher sending
 * real VP8 and Opus (encoded by ffmpeg here), and the files checked with
 * ffprobe and ffmpeg. KMS is the reference; a test that holds on one back end
 * only says which and why in its name (docs/media-server.md, RecorderEndpoint).
 */
import { execFile } from "node:child_process";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { RtpHeader, RtpPacket, type RTCRtpTransceiver } from "werift";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { childrenOf, EbmlId, readHeader } from "../../media-server/objects/recorder/ebml.ts";
import { mediaBackendFromEnv } from "../../scripts/system.ts";
import { type MediaBackendHandle, startMediaBackend } from "../helpers/media-backend.ts";
import { type Candidate, type TestPeer, testPeer } from "../bridge/helpers/peers.ts";
import { vp8Frames } from "../integration/vp8-media.ts";
import {
  connectKurento,
  iceCandidate,
  type KurentoClient,
  type KurentoMediaElement,
  type KurentoPipeline,
  type KurentoWebRtcEndpoint,
} from "../media-server/helpers/kurento.ts";
import { waitFor } from "../media-server/helpers/werift-peer.ts";

const run = promisify(execFile);
const BACKEND = mediaBackendFromEnv();
const KMS = BACKEND === "kms";
/**
 * How far a file's length may be from the wall-clock recording time, as a
 * fraction: 10 % on the embedded server (what it promises); 20 % on KMS,
 * whose files run long when it records the connection's start-up burst
 * (0.6–0.7 s) or short when it drops its last cluster at stop (seen: 11 %
 * on a loaded machine). KMS is the reference for states and contents, not
 * for this bound.
 */
const LENGTH_TOLERANCE = KMS ? 0.2 : 0.1;
/** Bound of every wait: only a guard against a hang. */
const WAIT_MS = 30_000;
/** How long the main recording lasts: long enough that a 10 % duration bound means something. */
const RECORD_MS = 5000;
const VIDEO_FPS = 15;
const OPUS_FRAME_MS = 20;

let url: string;
let server: MediaBackendHandle | undefined;
let client: KurentoClient;
let dir: string;
let opus: Buffer[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "recorder-test-"));
  opus = opusPackets();
  server = await startMediaBackend(BACKEND);
  url = server.url;
  client = await connectKurento(url);
});

afterAll(async () => {
  client?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Three seconds of a 440 Hz tone as Opus packets (20 ms each), encoded by ffmpeg. */
function opusPackets(): Buffer[] {
  const file = join(mkdtempSync(join(tmpdir(), "opus-clip-")), "tone.ogg");
  try {
    execFileSync(
      "ffmpeg",
      [
        ...[
          "-hide_banner",
          "-loglevel",
          "error",
          "-f",
          "lavfi",
          "-i",
          "sine=frequency=440:sample_rate=48000:duration=3",
        ],
        ...["-c:a", "libopus", "-b:a", "48k", "-frame_duration", String(OPUS_FRAME_MS), file],
      ],
      { stdio: ["ignore", "ignore", "pipe"], timeout: 60_000 },
    );
    // The first two packets are Ogg Opus's headers (OpusHead, OpusTags), not audio.
    return oggPackets(readFileSync(file)).slice(2);
  } finally {
    rmSync(join(file, ".."), { recursive: true, force: true });
  }
}

/** The packets of an Ogg stream: each page's segment table laces them (a 255-byte segment continues a packet). */
function oggPackets(ogg: Buffer): Buffer[] {
  const packets: Buffer[] = [];
  let pending: Buffer[] = [];
  let offset = 0;
  while (offset + 27 <= ogg.length && ogg.toString("latin1", offset, offset + 4) === "OggS") {
    const count = ogg.readUInt8(offset + 26);
    let data = offset + 27 + count;
    for (const size of ogg.subarray(offset + 27, offset + 27 + count)) {
      pending.push(ogg.subarray(data, data + size));
      data += size;
      if (size < 255) {
        packets.push(Buffer.concat(pending));
        pending = [];
      }
    }
    offset = data;
  }
  return packets;
}

/**
 * Sends the VP8 clip (RFC 7741, one descriptor byte) and the Opus tone in a
 * loop, paced by the wall clock (a plain setInterval falls behind it), so the
 * RTP clocks match the time a recording lasts.
 */
function startMedia(video: RTCRtpTransceiver, audio: RTCRtpTransceiver): { stop(): void } {
  const frames = vp8Frames();
  const start = performance.now();
  let videoSent = 0;
  let audioSent = 0;
  let videoSequence = 1000;
  let audioSequence = 300;
  const timer = setInterval(() => {
    const elapsed = performance.now() - start;
    for (; videoSent * (1000 / VIDEO_FPS) <= elapsed; videoSent += 1) {
      const frame = frames[videoSent % frames.length] ?? Buffer.alloc(0);
      const timestamp = (5000 + videoSent * (90_000 / VIDEO_FPS)) >>> 0;
      for (let at = 0; at < frame.length; at += 1000) {
        videoSequence = (videoSequence + 1) & 0xffff;
        const header = new RtpHeader({
          payloadType: 120,
          sequenceNumber: videoSequence,
          timestamp,
          marker: at + 1000 >= frame.length,
        });
        const payload = Buffer.concat([Buffer.from([at === 0 ? 0x10 : 0x00]), frame.subarray(at, at + 1000)]);
        video.sender.sendRtp(new RtpPacket(header, payload)).catch(() => {});
      }
    }
    for (; audioSent * OPUS_FRAME_MS <= elapsed; audioSent += 1) {
      audioSequence = (audioSequence + 1) & 0xffff;
      const timestamp = (7000 + audioSent * 48 * OPUS_FRAME_MS) >>> 0;
      const header = new RtpHeader({ payloadType: 109, sequenceNumber: audioSequence, timestamp, marker: false });
      audio.sender.sendRtp(new RtpPacket(header, opus[audioSent % opus.length] ?? Buffer.alloc(0))).catch(() => {});
    }
  }, 10);
  return { stop: () => clearInterval(timer) };
}

/** A kurento-client call in callback form (failures reach us), as a promise. */
function call<T = unknown>(target: object, method: string, ...args: unknown[]): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const fn = (target as Record<string, unknown>)[method];
    if (typeof fn !== "function") throw new Error(`${method} is not a kurento-client method`);
    fn.call(target, ...args, (error: unknown, result: T) => (error ? reject(error) : resolve(result)));
  });
}

/** What kurento-client hands the callback on failure: the JSON-RPC error's code, data.type and message. */
async function failure(promise: Promise<unknown>): Promise<{ code: unknown; type: unknown; message: string }> {
  try {
    await promise;
  } catch (error) {
    const shape = error as { code?: unknown; data?: { type?: unknown }; message?: unknown };
    return { code: shape.code, type: shape.data?.type, message: String(shape.message ?? "") };
  }
  throw new Error("the call succeeded; a failure was expected");
}

function objectCount(): Promise<number> {
  if (!server) throw new Error("no server");
  return server.objectCount();
}

const made: KurentoPipeline[] = [];
const peers: TestPeer[] = [];
const media: Array<{ stop(): void }> = [];

afterEach(async () => {
  for (const sender of media.splice(0)) sender.stop();
  for (const peer of peers.splice(0)) await peer.close().catch(() => undefined);
  for (const pipeline of made.splice(0)) await call(pipeline, "release").catch(() => undefined);
});

async function newPipeline(): Promise<KurentoPipeline> {
  const pipeline = await call<KurentoPipeline>(client, "create", "MediaPipeline");
  made.push(pipeline);
  return pipeline;
}

/** A WebRtcEndpoint with a werift publisher connected to it, sending VP8 and Opus. */
async function publisher(pipeline: KurentoPipeline): Promise<{ endpoint: KurentoWebRtcEndpoint; peer: TestPeer }> {
  const endpoint = await call<KurentoWebRtcEndpoint>(pipeline, "create", "WebRtcEndpoint", {});
  let peer: TestPeer | undefined;
  endpoint.on("IceCandidateFound", (event) => void peer?.addRemote(event.candidate as Candidate));
  peer = testPeer("sendonly", (candidate) => {
    void call(endpoint, "addIceCandidate", iceCandidate(candidate)).catch(() => undefined);
  });
  peers.push(peer);
  const connected = peer;
  await connected.answer(await call<string>(endpoint, "processOffer", await connected.offer()));
  await call(endpoint, "gatherCandidates");
  // KMS 7.2 sends this werift peer no MediaStateChanged (kurento-api.test.ts): the peer's own state says it.
  await waitFor(() => connected.peer.connectionState === "connected", WAIT_MS, "the publisher to connect");
  // The server's RTCP reports on both streams say it receives them: a recording started now does not begin with
  // the connection's start-up (both servers record the burst of media held back while it set up).
  let reported = 0;
  const reports = new Set<string>();
  for (const [kind, transceiver] of [
    ["audio", connected.audio],
    ["video", connected.video],
  ] as const) {
    transceiver.sender.onRtcp.subscribe(() => {
      reported += 1;
      reports.add(kind);
    });
  }
  media.push(startMedia(connected.video, connected.audio));
  await waitFor(() => reports.size === 2, WAIT_MS, `the server's RTCP on audio and video (${reported} so far)`);
  return { endpoint, peer: connected };
}

interface Recorder extends KurentoMediaElement {
  /** Event types in arrival order; UriEndpointStateChanged with its state (`UriEndpointStateChanged:START`). */
  readonly seen: string[];
  readonly payloads: Array<Record<string, unknown>>;
}

async function recorder(
  pipeline: KurentoPipeline,
  file: string,
  params: Record<string, unknown> = {},
): Promise<Recorder> {
  const element = await call<KurentoMediaElement>(pipeline, "create", "RecorderEndpoint", {
    uri: pathToFileURL(file).href,
    ...params,
  });
  const seen: string[] = [];
  const payloads: Array<Record<string, unknown>> = [];
  for (const type of ["UriEndpointStateChanged", "Recording", "Paused", "Stopped"]) {
    element.on(type, (event) => {
      seen.push(type === "UriEndpointStateChanged" ? `${type}:${String(event.state)}` : type);
      payloads.push(event);
    });
  }
  return Object.assign(element, { seen, payloads });
}

/**
 * Each state change is a UriEndpointStateChanged and its own event (Recording,
 * Paused, Stopped); KMS sends the two of a change in either order.
 */
function inPairs(seen: readonly string[]): string[][] {
  const pairs: string[][] = [];
  for (let index = 0; index < seen.length; index += 2) pairs.push(seen.slice(index, index + 2).sort());
  return pairs;
}

function state(element: KurentoMediaElement): Promise<string> {
  return call<string>(element, "getState");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Probe {
  duration: number;
  formatName: string;
  streams: Array<{ codec_type: string; codec_name: string; width?: number; height?: number }>;
}

async function probe(file: string): Promise<Probe> {
  const { stdout } = await run("ffprobe", [
    ...["-v", "error", "-of", "json"],
    ...["-show_entries", "format=duration,format_name:stream=codec_type,codec_name,width,height", file],
  ]);
  const parsed = JSON.parse(stdout) as {
    format: { duration?: string; format_name: string };
    streams: Probe["streams"];
  };
  return { duration: Number(parsed.format.duration), formatName: parsed.format.format_name, streams: parsed.streams };
}

/**
 * Decodes every frame; the decoders' complaints fail the test. The null
 * muxer's "non monotonically increasing dts" lines are not decoding errors:
 * KMS's own recordings raise them (two video frames on one millisecond).
 */
async function decodeErrors(file: string): Promise<string[]> {
  const { stderr } = await run("ffmpeg", ["-v", "error", "-i", file, "-f", "null", "-"], { maxBuffer: 16 << 20 });
  return stderr
    .split("\n")
    .filter((line) => line.trim() !== "")
    .filter(
      (line) => !/^\[null @ .*non monotonically increasing dts/.test(line) && !/Last message repeated/.test(line),
    );
}

/** A big-endian unsigned integer of up to 8 bytes (Buffer reads at most 6). */
function uintAt(bytes: Buffer, start: number, length: number): number {
  let value = 0;
  for (let index = 0; index < length; index += 1) value = value * 256 + (bytes[start + index] ?? 0);
  return value;
}

/** A player seeks through the Cues the SeekHead points at; the Info holds the duration. */
function seekIndex(file: string): { cuePoints: number; duration: boolean } {
  const bytes = readFileSync(file);
  const ebml = readHeader(bytes, 0);
  const segment = readHeader(bytes, ebml.dataStart + (ebml.size ?? 0));
  expect(segment.id).toBe(EbmlId.Segment);
  const first = readHeader(bytes, segment.dataStart);
  expect(first.id).toBe(EbmlId.SeekHead);
  const seeks = childrenOf(bytes, first.dataStart, first.dataStart + (first.size ?? 0)).filter(
    (child) => child.id === EbmlId.Seek,
  );
  let cuePoints = -1;
  let duration = false;
  for (const seek of seeks) {
    const [id, position] = childrenOf(bytes, seek.dataStart, seek.dataStart + (seek.size ?? 0));
    if (!id || !position) continue;
    const target = readHeader(bytes, segment.dataStart + uintAt(bytes, position.dataStart, position.size ?? 0));
    expect(target.id).toBe(uintAt(bytes, id.dataStart, id.size ?? 0));
    const children = childrenOf(bytes, target.dataStart, target.dataStart + (target.size ?? 0));
    if (target.id === EbmlId.Cues) cuePoints = children.filter((child) => child.id === EbmlId.CuePoint).length;
    if (target.id === EbmlId.Info) duration = children.some((child) => child.id === EbmlId.Duration);
  }
  return { cuePoints, duration };
}

describe(`RecorderEndpoint as kurento-client sees it (${BACKEND})`, () => {
  it("WEBM: STOP, record() → UriEndpointStateChanged START + Recording, stopAndWait() → Stopped + STOP; a seekable VP8 + Opus WebM as long as the recording (±10 % on the embedded server, ±20 % on KMS: LENGTH_TOLERANCE) that decodes without error", async () => {
    const pipeline = await newPipeline();
    const { endpoint } = await publisher(pipeline);
    const file = join(dir, "webm.webm");
    const rec = await recorder(pipeline, file, { mediaProfile: "WEBM" });
    expect(await state(rec)).toBe("STOP");
    expect(await call(rec, "getUri")).toBe(pathToFileURL(file).href);
    await call(endpoint, "connect", rec);

    const recordAt = Date.now();
    await call(rec, "record");
    // Both servers move to START only once media reaches the recorder.
    await waitFor(() => rec.seen.includes("Recording"), WAIT_MS, `Recording (seen: ${rec.seen.join(", ")})`);
    expect(inPairs(rec.seen)).toEqual([["Recording", "UriEndpointStateChanged:START"]]);
    expect(await state(rec)).toBe("START");
    const started = rec.payloads.find((payload) => payload.type === "Recording") ?? {};
    expect(started).toMatchObject({ type: "Recording", source: rec.id, tags: [] });
    expect(Number(started.timestampMillis)).toBeGreaterThanOrEqual(recordAt - 1000);
    expect(rec.payloads.find((payload) => payload.type === "UriEndpointStateChanged")).toMatchObject({
      source: rec.id,
      state: "START",
    });

    await sleep(RECORD_MS - (Date.now() - recordAt));
    const stopAt = Date.now();
    await call(rec, "stopAndWait");
    const wallSeconds = (stopAt - recordAt) / 1000;
    // KMS sends the two in either order, sometimes after stopAndWait's answer.
    await waitFor(() => rec.seen.length >= 4, WAIT_MS, `Stopped (seen: ${rec.seen.join(", ")})`);
    expect(inPairs(rec.seen)[1]).toEqual(["Stopped", "UriEndpointStateChanged:STOP"]);
    expect(await state(rec)).toBe("STOP");

    const info = await probe(file);
    expect(info.formatName).toBe("matroska,webm");
    expect(info.streams.map((stream) => `${stream.codec_type}:${stream.codec_name}`).sort()).toEqual([
      "audio:opus",
      "video:vp8",
    ]);
    expect(info.streams.find((stream) => stream.codec_type === "video")).toMatchObject({ width: 320, height: 240 });
    expect(Math.abs(info.duration - wallSeconds) / wallSeconds).toBeLessThan(LENGTH_TOLERANCE);
    expect(await decodeErrors(file)).toEqual([]);
    expect(seekIndex(file)).toMatchObject({ duration: true });
    expect(seekIndex(file).cuePoints).toBeGreaterThan(0);

    // As KMS 7.2: a stopped recorder is done, record() again is accepted and changes nothing.
    const size = statSync(file).size;
    await call(rec, "record");
    expect(await state(rec)).toBe("STOP");
    expect(statSync(file).size).toBe(size);

    await call(pipeline, "release");
    expect(await objectCount()).toBe(0);
  });

  it("WEBM_VIDEO_ONLY writes only the video, WEBM_AUDIO_ONLY only the audio (two recorders on one publisher)", async () => {
    const pipeline = await newPipeline();
    const { endpoint } = await publisher(pipeline);
    const videoFile = join(dir, "video-only.webm");
    const audioFile = join(dir, "audio-only.webm");
    const videoOnly = await recorder(pipeline, videoFile, { mediaProfile: "WEBM_VIDEO_ONLY" });
    const audioOnly = await recorder(pipeline, audioFile, { mediaProfile: "WEBM_AUDIO_ONLY" });
    await call(endpoint, "connect", videoOnly);
    await call(endpoint, "connect", audioOnly);
    await call(videoOnly, "record");
    await call(audioOnly, "record");
    await waitFor(
      () => videoOnly.seen.includes("Recording") && audioOnly.seen.includes("Recording"),
      WAIT_MS,
      "both recorders Recording",
    );
    // Past the clip's next keyframe (one a second): the video-only file has pictures to decode.
    await sleep(2500);
    await Promise.all([call(videoOnly, "stopAndWait"), call(audioOnly, "stopAndWait")]);

    const video = await probe(videoFile);
    expect(video.streams.map((stream) => `${stream.codec_type}:${stream.codec_name}`)).toEqual(["video:vp8"]);
    expect(video.duration).toBeGreaterThan(1);
    const audio = await probe(audioFile);
    expect(audio.streams.map((stream) => `${stream.codec_type}:${stream.codec_name}`)).toEqual(["audio:opus"]);
    expect(audio.duration).toBeGreaterThan(1);
    expect(await decodeErrors(videoFile)).toEqual([]);
    expect(await decodeErrors(audioFile)).toEqual([]);
  });

  it("pause() → UriEndpointStateChanged PAUSE + Paused, record() → START + Recording again; the paused time is cut out of the file", async () => {
    const pipeline = await newPipeline();
    const { endpoint } = await publisher(pipeline);
    const file = join(dir, "paused.webm");
    const rec = await recorder(pipeline, file);
    await call(endpoint, "connect", rec);
    const recordAt = Date.now();
    await call(rec, "record");
    await waitFor(() => rec.seen.includes("Recording"), WAIT_MS, "Recording");
    await sleep(2000);
    const pauseAt = Date.now();
    await call(rec, "pause");
    await waitFor(() => rec.seen.includes("Paused"), WAIT_MS, "Paused");
    expect(await state(rec)).toBe("PAUSE");
    await sleep(2000);
    const resumeAt = Date.now();
    await call(rec, "record");
    await waitFor(() => rec.seen.filter((type) => type === "Recording").length === 2, WAIT_MS, "Recording again");
    expect(await state(rec)).toBe("START");
    await sleep(2000);
    const stopAt = Date.now();
    await call(rec, "stopAndWait");
    await waitFor(() => rec.seen.includes("Stopped"), WAIT_MS, "Stopped");
    expect(inPairs(rec.seen).slice(0, 3)).toEqual([
      ["Recording", "UriEndpointStateChanged:START"],
      ["Paused", "UriEndpointStateChanged:PAUSE"],
      ["Recording", "UriEndpointStateChanged:START"],
    ]);
    const recordedSeconds = (stopAt - recordAt - (resumeAt - pauseAt)) / 1000;
    const pausedSeconds = (resumeAt - pauseAt) / 1000;
    const info = await probe(file);
    // The paused ~2 s are not in the file: a file that kept them would be that much longer. Around that,
    // the usual slack of each server (KMS once wrote 0.8 s off over 4 s: 20 %), at least 1 s, below the pause.
    const slack = Math.max(LENGTH_TOLERANCE * recordedSeconds, 1);
    expect(slack).toBeLessThan(pausedSeconds * 0.75);
    expect(Math.abs(info.duration - recordedSeconds)).toBeLessThan(slack);
    expect(await decodeErrors(file)).toEqual([]);
  });

  it("the publisher's endpoint released mid-recording: the recorder stays in START (also with stopOnEndOfStream: a WebRtcEndpoint's stream never ends), and stopAndWait() leaves a valid file", async () => {
    const pipeline = await newPipeline();
    const { endpoint, peer } = await publisher(pipeline);
    const file = join(dir, "publisher-gone.webm");
    const rec = await recorder(pipeline, file, { stopOnEndOfStream: true });
    await call(endpoint, "connect", rec);
    await call(rec, "record");
    await waitFor(() => rec.seen.includes("Recording"), WAIT_MS, "Recording");
    await sleep(2500);
    await call(endpoint, "release");
    await peer.close();
    expect(await state(rec)).toBe("START");
    await call(rec, "stopAndWait");
    await waitFor(() => rec.seen.includes("Stopped"), WAIT_MS, "Stopped");
    expect(rec.seen).not.toContain("Paused");

    const info = await probe(file);
    expect(info.streams.map((stream) => `${stream.codec_type}:${stream.codec_name}`).sort()).toEqual([
      "audio:opus",
      "video:vp8",
    ]);
    expect(info.duration).toBeGreaterThan(1.5);
    expect(await decodeErrors(file)).toEqual([]);
    expect(seekIndex(file)).toMatchObject({ duration: true });
  });

  it("another publisher connected to the recorder mid-recording replaces the first: one file of both that decodes without error, as long as the recording (±10 %; ±15 % on KMS, whose files ran 4–12 % long across the switch)", async () => {
    const pipeline = await newPipeline();
    const first = await publisher(pipeline);
    const file = join(dir, "switched.webm");
    const rec = await recorder(pipeline, file);
    await call(first.endpoint, "connect", rec);
    const recordAt = Date.now();
    await call(rec, "record");
    await waitFor(() => rec.seen.includes("Recording"), WAIT_MS, "Recording");
    const second = await publisher(pipeline);
    await sleep(2500 - (Date.now() - recordAt));
    await call(second.endpoint, "connect", rec);
    const sources = await call<Array<{ source: string }>>(rec, "getSourceConnections");
    expect(new Set(sources.map((connection) => connection.source))).toEqual(new Set([second.endpoint.id]));
    await sleep(5000 - (Date.now() - recordAt));
    const stopAt = Date.now();
    await call(rec, "stopAndWait");
    await waitFor(() => rec.seen.includes("Stopped"), WAIT_MS, "Stopped");
    expect(rec.seen.filter((type) => type === "Recording")).toHaveLength(1);

    const wallSeconds = (stopAt - recordAt) / 1000;
    const info = await probe(file);
    expect(info.streams.map((stream) => `${stream.codec_type}:${stream.codec_name}`).sort()).toEqual([
      "audio:opus",
      "video:vp8",
    ]);
    expect(Math.abs(info.duration - wallSeconds) / wallSeconds).toBeLessThan(LENGTH_TOLERANCE);
    expect(await decodeErrors(file)).toEqual([]);
  });

  it("a mediaProfile outside KMS's MediaProfileSpecType (WEBM_HD, which kurento-client's prefix check lets through) is refused with 40001; the embedded server's message also names it", async () => {
    const pipeline = await newPipeline();
    const uri = pathToFileURL(join(dir, "never.webm")).href;
    const refused = await failure(call(pipeline, "create", "RecorderEndpoint", { uri, mediaProfile: "WEBM_HD" }));
    expect(refused).toMatchObject({ code: 40001, type: "MARSHALL_ERROR" });
    expect(refused.message).toContain("Invalid value for 'MediaProfileSpecType'");
    if (!KMS) expect(refused.message).toContain("WEBM_HD");
  });

  it(`a non-file URI and a non-WebM profile: ${KMS ? "KMS creates the recorder (it uploads to http(s) URIs, writes MP4)" : "the embedded server refuses both (40107): it writes local WebM files only"}`, async () => {
    const pipeline = await newPipeline();
    const http = call<KurentoMediaElement>(pipeline, "create", "RecorderEndpoint", {
      uri: "http://127.0.0.1:9/upload.webm",
    });
    const mp4 = call<KurentoMediaElement>(pipeline, "create", "RecorderEndpoint", {
      uri: pathToFileURL(join(dir, "never.mp4")).href,
      mediaProfile: "MP4",
    });
    if (KMS) {
      expect((await http).id).toContain("RecorderEndpoint");
      expect((await mp4).id).toContain("RecorderEndpoint");
      return;
    }
    const notFile = await failure(http);
    expect(notFile).toMatchObject({ code: 40107, type: "MEDIA_OBJECT_ILLEGAL_PARAM_ERROR" });
    expect(notFile.message).toContain("file://");
    const notWebm = await failure(mp4);
    expect(notWebm).toMatchObject({ code: 40107, type: "MEDIA_OBJECT_ILLEGAL_PARAM_ERROR" });
    expect(notWebm.message).toContain("MP4");
  });
});
