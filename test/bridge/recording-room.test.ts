/**
 * A room's recordings (bridge/media/room-recording.ts) decided against a
 * scripted KMS through the real kurento-client: which RecorderEndpoint is
 * made and how it is fed, when a file ends (stopRecording, unpublish,
 * republish, releaseUser, releaseRoom, media lost, a recorder error), that
 * the pipeline outlives its recorders, and that nothing of it reaches the
 * media path. Then the whole bridge: `register` says whether it can record,
 * and a file recorded on a room link arrives at the worker's upload API.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startBridge } from "../../bridge/bridge.ts";
import { DEFAULT_HAT, loadConfig } from "../../bridge/config.ts";
import { silentLogger } from "../../bridge/log.ts";
import { KmsPool } from "../../bridge/media/kms-pool.ts";
import { connectKurentoMediaServer } from "../../bridge/media/kurento-media-server.ts";
import { recorderPlan } from "../../bridge/media/room-recording.ts";
import { RoomMedia } from "../../bridge/media/room-media.ts";
import { sentKinds } from "../../bridge/media/sdp-kinds.ts";
import { type Journal, readJournal, RecordingPaths } from "../../bridge/recordings/journal.ts";
import type { MediaEvent } from "../../protocol/bridge.ts";
import { RoomCode } from "../../protocol/errors.ts";
import { RpcRequestError } from "../../protocol/rpc-peer.ts";
import { FakeWorker, waitUntil } from "./helpers/fake-worker.ts";
import { ScriptedKms } from "./helpers/scripted-kms.ts";
import { UploadServer } from "./helpers/upload-server.ts";

const HAT = { url: "http://media.example/img/mario-wings.png", ...DEFAULT_HAT };
const VIDEO_OFFER =
  "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n";
const AV_OFFER =
  "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
  "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n";
const WAIT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 800;
const RECORDING = "rec_roomtest0001";
const TOKEN = "room-test-upload-token";

let kms: ScriptedKms;
let pool: KmsPool;
let dir: string;
const rooms: RoomMedia[] = [];
/** What the rooms handed to the upload queue, and what they said they were recording. */
const delivered: string[] = [];
const live = new Set<string>();

/** Bytes that pass the "holds media" check (a WebM header and a cluster). */
function webmLike(size: number): Buffer {
  const data = randomBytes(size);
  Buffer.from([0x1a, 0x45, 0xdf, 0xa3]).copy(data, 0);
  Buffer.from([0x1f, 0x43, 0xb6, 0x75]).copy(data, 64);
  return data;
}

function newRoom(
  name: string,
  options: { sink?: boolean; mediaDir?: string } = {},
): { room: RoomMedia; events: MediaEvent[]; paths: RecordingPaths } {
  const events: MediaEvent[] = [];
  const paths = new RecordingPaths(dir, options.mediaDir ?? dir);
  const uploads = {
    recording: (path: string) => live.add(path),
    enqueue: (path: string) => {
      live.delete(path);
      delivered.push(path);
    },
  };
  const room = new RoomMedia({
    room: name,
    pool,
    hat: HAT,
    emit: (event) => events.push(event),
    log: silentLogger,
    ...(options.sink === false
      ? { recordingUnavailable: "RECORDINGS_DIR is not writable" }
      : { recordings: { paths, uploads } }),
  });
  rooms.push(room);
  return { room, events, paths };
}

function recordParams(user: string, file: string, startedAt = Date.now()) {
  return { recording: RECORDING, user, stream: "webcam", file, token: TOKEN, startedAt };
}

async function journalOf(paths: RecordingPaths, file: string): Promise<Journal> {
  const read = await readJournal(paths.journal(RECORDING, file));
  if (!read.ok) throw new Error(read.problem);
  return read.journal;
}

async function rpcFailure(promise: Promise<unknown>): Promise<RpcRequestError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RpcRequestError) return error;
    throw error;
  }
  throw new Error("expected the command to fail");
}

/** Index of the first request matching, in arrival order. */
function requestIndex(operation: string, object: string | undefined): number {
  return kms.requests.findIndex(
    (request) =>
      (request.method === operation || (request.method === "invoke" && request.params.operation === operation)) &&
      request.params.object === object,
  );
}

beforeAll(async () => {
  kms = await ScriptedKms.start();
  pool = new KmsPool({
    kms: [{ uri: kms.url, limit: 10 }],
    factory: connectKurentoMediaServer,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    lostAfterMs: 2000,
    log: silentLogger,
    onLost: () => undefined,
  });
  await pool.settle(WAIT_MS);
  expect(pool.connectedCount).toBe(1);
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "bridge-recording-room-"));
  kms.recordedBytes = webmLike(4096);
});

afterEach(async () => {
  kms.silent.clear();
  kms.refuse.clear();
  kms.delays.clear();
  await Promise.all(rooms.splice(0).map((room) => room.releaseRoom()));
  delivered.length = 0;
  live.clear();
  rmSync(dir, { recursive: true, force: true });
});

afterAll(async () => {
  await pool?.close();
  await kms?.close();
});

describe("room recordings against a scripted KMS, through the real kurento-client", () => {
  it("chooses the recorder's profile from what the publisher's offer sends", () => {
    expect(sentKinds(VIDEO_OFFER)).toEqual({ audio: false, video: true });
    expect(sentKinds(AV_OFFER)).toEqual({ audio: true, video: true });
    // A rejected section (port 0) and a receive-only one send nothing; the session-level direction is the default.
    expect(sentKinds(AV_OFFER.replace("m=audio 9", "m=audio 0"))).toEqual({ audio: false, video: true });
    expect(sentKinds(AV_OFFER.replace("a=sendonly\r\nm=video", "a=recvonly\r\nm=video"))).toEqual({
      audio: false,
      video: true,
    });
    expect(sentKinds("v=0\r\na=recvonly\r\nm=audio 9 RTP/AVP 0\r\nm=video 9 RTP/AVP 96\r\na=sendrecv\r\n")).toEqual({
      audio: false,
      video: true,
    });
    expect(recorderPlan({ audio: true, video: true })).toEqual({ profile: "WEBM", connect: ["AUDIO", "VIDEO"] });
    expect(recorderPlan({ audio: false, video: true })).toEqual({ profile: "WEBM_VIDEO_ONLY", connect: ["VIDEO"] });
    expect(recorderPlan({ audio: true, video: false })).toEqual({ profile: "WEBM_AUDIO_ONLY", connect: ["AUDIO"] });
    expect(recorderPlan({ audio: false, video: false })).toBeNull();
  });

  it("refuses `record` clearly: 303 for a user who publishes nothing, 301 on a bridge that cannot record", async () => {
    const { room } = newRoom("refusals");
    const none = await rpcFailure(room.handlers.record(recordParams("nobody", "001-nobody-webcam.webm")));
    expect(none.code).toBe(RoomCode.MEDIA_ENDPOINT);
    expect(none.message).toBe("nobody has no published media to record");
    expect(kms.idsOf("RecorderEndpoint")).toEqual([]);

    const { room: unable } = newRoom("unable", { sink: false });
    await unable.handlers.publish({ user: "alice", sdpOffer: VIDEO_OFFER, loopback: false, dataChannels: false });
    const off = await rpcFailure(unable.handlers.record(recordParams("alice", "001-alice-webcam.webm")));
    expect(off.code).toBe(RoomCode.MEDIA_GENERIC);
    expect(off.message).toBe("This media bridge cannot record: RECORDINGS_DIR is not writable");
  });

  it("records a video-only publisher: a WEBM_VIDEO_ONLY recorder on the media server's path, fed the PassThrough's video; `record` again is a no-op", async () => {
    const { room, paths } = newRoom("video-only", { mediaDir: "/srv/kms recordings" });
    kms.recordedBytes = null; // the media server's path does not exist here
    await room.handlers.publish({ user: "alice", sdpOffer: VIDEO_OFFER, loopback: false, dataChannels: false });
    const params = recordParams("alice", "001-alice-webcam.webm");
    expect(await room.handlers.record(params)).toEqual({});
    expect(await room.handlers.record(params)).toEqual({});

    const recorders = kms.idsOf("RecorderEndpoint");
    expect(recorders).toHaveLength(1);
    const [recorder] = recorders;
    const [passThrough] = kms.idsOf("PassThrough");
    expect(kms.recorders.get(recorder ?? "")).toMatchObject({
      uri: `file:///srv/kms%20recordings/${RECORDING}/001-alice-webcam.webm`,
      mediaProfile: "WEBM_VIDEO_ONLY",
      stopOnEndOfStream: true,
    });
    expect(kms.invocations("connect").filter((call) => call.object === passThrough)).toEqual([
      expect.objectContaining({ operationParams: expect.objectContaining({ sink: recorder, mediaType: "VIDEO" }) }),
    ]);
    expect(kms.invocations("record")).toEqual([expect.objectContaining({ object: recorder })]);
    // Its events are listened to: when writing starts, stops, or fails.
    for (const event of ["Recording", "Stopped", "Error"]) expect(kms.subscribed(recorder ?? "", event)).toBe(true);
    // The journal is on disk from the start (a crash mid-recording still leaves the token and the metadata).
    expect(await journalOf(paths, "001-alice-webcam.webm")).toMatchObject({
      state: "recording",
      token: TOKEN,
      user: "alice",
      stream: "webcam",
      room: "video-only",
    });
    expect(live).toEqual(new Set([paths.journal(RECORDING, "001-alice-webcam.webm")]));
    expect(room.stats().recordings).toBe(1);
  });

  it("records audio and video both (WEBM) with one connection per kind", async () => {
    const { room } = newRoom("audio-video");
    await room.handlers.publish({ user: "bob", sdpOffer: AV_OFFER, loopback: false, dataChannels: false });
    await room.handlers.record(recordParams("bob", "001-bob-webcam.webm"));
    const [recorder] = kms.idsOf("RecorderEndpoint");
    expect(kms.recorders.get(recorder ?? "")).toMatchObject({ mediaProfile: "WEBM" });
    const kinds = kms
      .invocations("connect")
      .filter((call) => (call.operationParams as { sink?: string }).sink === recorder)
      .map((call) => (call.operationParams as { mediaType?: string }).mediaType);
    expect(kinds).toEqual(["AUDIO", "VIDEO"]);
  });

  it("stopRecording ends the file with stopAndWait, then releases the recorder; the journal is ready with its offset and duration; a second stopRecording is harmless", async () => {
    const { room, paths, events } = newRoom("stop");
    await room.handlers.publish({ user: "carol", sdpOffer: VIDEO_OFFER, loopback: false, dataChannels: false });
    const startedAt = Date.now() - 1000;
    await room.handlers.record(recordParams("carol", "001-carol-webcam.webm", startedAt));
    const [recorder] = kms.idsOf("RecorderEndpoint");
    await waitUntil(
      async () => (await journalOf(paths, "001-carol-webcam.webm")).since !== undefined,
      WAIT_MS,
      "the Recording event in the journal",
    );
    await new Promise((resolve) => setTimeout(resolve, 300));

    expect(await room.handlers.stopRecording({ recording: RECORDING })).toEqual({});
    expect(requestIndex("stopAndWait", recorder)).toBeGreaterThan(-1);
    expect(requestIndex("release", recorder)).toBeGreaterThan(requestIndex("stopAndWait", recorder));
    const journal = await journalOf(paths, "001-carol-webcam.webm");
    expect(journal).toMatchObject({ state: "ready", bytes: 4096 });
    expect(journal.startOffsetMs).toBeGreaterThanOrEqual(1000);
    expect(journal.startOffsetMs).toBeLessThan(5000);
    expect(journal.durationMs).toBeGreaterThanOrEqual(250);
    expect(journal.durationMs).toBeLessThan(5000);
    expect(delivered).toEqual([paths.journal(RECORDING, "001-carol-webcam.webm")]);
    expect(room.stats().recordings).toBe(0);

    expect(await room.handlers.stopRecording({ recording: RECORDING })).toEqual({});
    // The same file again: it has ended, nothing records over it.
    expect(await room.handlers.record(recordParams("carol", "001-carol-webcam.webm"))).toEqual({});
    expect(kms.idsOf("RecorderEndpoint")).toEqual([]);
    expect(delivered).toHaveLength(1);
    // The media path never heard of any of it.
    expect(events.filter((event) => event.event === "mediaError" || event.event === "mediaLost")).toEqual([]);
    expect(room.stats()).toMatchObject({ publishers: 1, pipeline: true });
  });

  it("unpublish, republish and releaseUser end the user's file, in the background; the pipeline waits for the recorder", async () => {
    const { room, paths } = newRoom("stream-ends");
    kms.delays.set("stopAndWait", 400);
    for (const [user, end] of [
      ["dan", "unpublish"],
      ["erin", "republish"],
      ["fay", "releaseUser"],
    ] as const) {
      await room.handlers.publish({ user, sdpOffer: VIDEO_OFFER, loopback: false, dataChannels: false });
      const file = `001-${user}-webcam.webm`;
      await room.handlers.record(recordParams(user, file));
      const started = Date.now();
      if (end === "unpublish") await room.handlers.unpublish({ user });
      else if (end === "republish")
        await room.handlers.publish({ user, sdpOffer: VIDEO_OFFER, loopback: false, dataChannels: false });
      else await room.handlers.releaseUser({ user });
      // The command did not wait for the recorder.
      expect(Date.now() - started).toBeLessThan(350);
      await waitUntil(() => delivered.includes(paths.journal(RECORDING, file)), WAIT_MS, `${user}'s file to end`);
      expect((await journalOf(paths, file)).state).toBe("ready");
    }
    // erin publishes again: her new stream is not recorded until the room asks (a new file).
    expect(room.stats()).toMatchObject({ publishers: 1, recordings: 0 });

    // The last publisher leaves while her file ends: the pipeline goes only after the recorder.
    const [pipeline] = kms.idsOf("MediaPipeline");
    await room.handlers.record(recordParams("erin", "002-erin-webcam.webm"));
    const recorder = kms.idsOf("RecorderEndpoint")[0];
    await room.handlers.unpublish({ user: "erin" });
    expect(room.stats().pipeline).toBe(true);
    await waitUntil(() => !kms.objects.has(pipeline ?? ""), WAIT_MS, "the pipeline's release");
    const stopped = kms.requests[requestIndex("stopAndWait", recorder)];
    const released = kms.requests[requestIndex("release", pipeline)];
    expect(released?.at).toBeGreaterThanOrEqual((stopped?.at ?? 0) + 350);
  });

  it("releaseRoom completes every file before it releases the pipeline", async () => {
    const { room, paths } = newRoom("release-room");
    kms.delays.set("stopAndWait", 300);
    await room.handlers.publish({ user: "gus", sdpOffer: VIDEO_OFFER, loopback: false, dataChannels: false });
    await room.handlers.publish({ user: "hal", sdpOffer: AV_OFFER, loopback: false, dataChannels: false });
    await room.handlers.record(recordParams("gus", "001-gus-webcam.webm"));
    await room.handlers.record(recordParams("hal", "002-hal-webcam.webm"));
    const [pipeline] = kms.idsOf("MediaPipeline");
    const recorders = kms.idsOf("RecorderEndpoint");
    await room.handlers.releaseRoom({ reason: "closed" });
    expect(kms.objects.has(pipeline ?? "")).toBe(false);
    const release = requestIndex("release", pipeline);
    for (const recorder of recorders) {
      expect(requestIndex("stopAndWait", recorder)).toBeGreaterThan(-1);
      expect(requestIndex("stopAndWait", recorder)).toBeLessThan(release);
    }
    expect(delivered.sort()).toEqual(
      [paths.journal(RECORDING, "001-gus-webcam.webm"), paths.journal(RECORDING, "002-hal-webcam.webm")].sort(),
    );
  });

  it("a recorder's Error event fails its file (reported through /failed), and the publisher and the room never hear of it", async () => {
    const { room, paths, events } = newRoom("recorder-error");
    await room.handlers.publish({ user: "ivy", sdpOffer: VIDEO_OFFER, loopback: false, dataChannels: false });
    await room.handlers.record(recordParams("ivy", "001-ivy-webcam.webm"));
    const [recorder] = kms.idsOf("RecorderEndpoint");
    kms.raiseError(recorder ?? "", "Permission denied writing the file");
    await waitUntil(() => delivered.length === 1, WAIT_MS, "the failed file");
    expect(await journalOf(paths, "001-ivy-webcam.webm")).toMatchObject({
      state: "failed",
      reason: expect.stringContaining("Permission denied writing the file"),
    });
    expect(events.filter((event) => event.event === "mediaError")).toEqual([]);
    expect(room.stats()).toMatchObject({ publishers: 1, recordings: 0 });
  });

  it("a file the recorder never wrote to fails with 'no media reached the recorder'", async () => {
    const { room, paths } = newRoom("no-media");
    kms.recordedBytes = null;
    await room.handlers.publish({ user: "jo", sdpOffer: VIDEO_OFFER, loopback: false, dataChannels: false });
    await room.handlers.record(recordParams("jo", "001-jo-webcam.webm"));
    await room.handlers.stopRecording({ recording: RECORDING });
    expect(await journalOf(paths, "001-jo-webcam.webm")).toMatchObject({
      state: "failed",
      reason: expect.stringMatching(/^no media reached the recorder/),
    });
    expect(delivered).toHaveLength(1);
  });

  it("a media server that refuses `record`: the command fails with its error and the file is reported failed", async () => {
    const { room, paths } = newRoom("refused-record");
    kms.refuse.set("record", "no space left on device");
    await room.handlers.publish({ user: "kim", sdpOffer: VIDEO_OFFER, loopback: false, dataChannels: false });
    const failed = await rpcFailure(room.handlers.record(recordParams("kim", "001-kim-webcam.webm")));
    expect(failed.code).toBe(RoomCode.MEDIA_GENERIC);
    expect(failed.message).toContain("no space left on device");
    await waitUntil(() => delivered.length === 1, WAIT_MS, "the failed file");
    expect(await journalOf(paths, "001-kim-webcam.webm")).toMatchObject({
      state: "failed",
      reason: expect.stringContaining("could not start recording"),
    });
    expect(kms.idsOf("RecorderEndpoint")).toEqual([]);
    expect(room.stats()).toMatchObject({ publishers: 1, recordings: 0 });
  });

  it("media lost, or a recorder that does not stop in time: the file is taken as far as it got", async () => {
    const { room, paths } = newRoom("lost");
    await room.handlers.publish({ user: "lee", sdpOffer: VIDEO_OFFER, loopback: false, dataChannels: false });
    await room.handlers.record(recordParams("lee", "001-lee-webcam.webm"));
    kms.silent.add("stopAndWait");
    room.mediaLost("the media server restarted");
    await waitUntil(() => delivered.length === 1, WAIT_MS, "the cut file");
    expect(await journalOf(paths, "001-lee-webcam.webm")).toMatchObject({
      state: "ready",
      bytes: 4096,
      reason: expect.stringContaining("the file is cut where it ended"),
    });
    expect(room.idle).toBe(true);
  });
});

describe("the bridge's recording, end to end against a scripted KMS and the worker stand-in", () => {
  it("registers `recording: true` when its RECORDINGS_DIR is writable and its KMS has RecorderEndpoint, and delivers a file recorded on a room link to the upload API", async () => {
    const worker = await FakeWorker.start("recording-bridge-secret-0123456789");
    const uploads = UploadServer.mounted();
    uploads.tokens.set(RECORDING, TOKEN);
    worker.onHttp = (request, response) => uploads.serve(request, response);
    const bridge = await startBridge(
      loadConfig({
        BRIDGE_SECRET: worker.secret,
        BRIDGE_ID: "recording-bridge",
        WORKER_URL: worker.url,
        KMS_URIS: kms.url,
        BRIDGE_HTTP_PORT: "0",
        RECORDINGS_DIR: dir,
        LOG_LEVEL: "silent",
      }),
      { backoff: { minMs: 50, maxMs: 400 }, heartbeatMs: 0, settleMs: 2000 },
    );
    try {
      const control = await worker.registeredControl(WAIT_MS);
      expect(control.received.find((entry) => entry.method === "register")?.params).toMatchObject({
        recording: true,
      });
      await control.request("attach", { room: "linked", user: "max" });
      const link = await worker.roomLink("linked", WAIT_MS);
      await link.request("publish", { user: "max", sdpOffer: VIDEO_OFFER, loopback: false, dataChannels: false });
      expect(await link.request("record", recordParams("max", "001-max-webcam.webm"))).toEqual({});
      const metrics = await (await fetch(`${bridge.httpUrl}/metrics`)).text();
      expect(metrics).toContain("bridge_recordings_active 1\n");
      expect(bridge.stats().recordings).toEqual({ enabled: true, active: 1, uploadsPending: 0 });
      expect(await link.request("stopRecording", { recording: RECORDING })).toEqual({});
      await waitUntil(() => uploads.completed.length === 1, WAIT_MS, "the upload");
      expect(uploads.completed[0]).toMatchObject({ recording: RECORDING, file: "001-max-webcam.webm" });
      expect(uploads.completed[0]?.data.length).toBe(4096);
      await waitUntil(() => bridge.stats().recordings.uploadsPending === 0, WAIT_MS, "the queue to empty");
      expect(existsSync(join(dir, RECORDING))).toBe(false);
    } finally {
      await bridge.stop();
      await worker.close();
    }
  });

  it("registers `recording: false` and refuses `record` when RECORDINGS_DIR cannot be written", async () => {
    const worker = await FakeWorker.start("recording-bridge-secret-0123456789");
    const notADir = join(dir, "a-file");
    writeFileSync(notADir, "");
    const bridge = await startBridge(
      loadConfig({
        BRIDGE_SECRET: worker.secret,
        BRIDGE_ID: "bridge-without-recordings",
        WORKER_URL: worker.url,
        KMS_URIS: kms.url,
        BRIDGE_HTTP_PORT: "0",
        RECORDINGS_DIR: join(notADir, "recordings"),
        LOG_LEVEL: "silent",
      }),
      { backoff: { minMs: 50, maxMs: 400 }, heartbeatMs: 0, settleMs: 2000 },
    );
    try {
      const control = await worker.registeredControl(WAIT_MS);
      expect(control.received.find((entry) => entry.method === "register")?.params).toMatchObject({
        recording: false,
      });
      await control.request("attach", { room: "unrecorded", user: "ned" });
      const link = await worker.roomLink("unrecorded", WAIT_MS);
      await link.request("publish", { user: "ned", sdpOffer: VIDEO_OFFER, loopback: false, dataChannels: false });
      const refused = await link.request("record", recordParams("ned", "001-ned-webcam.webm")).then(
        () => null,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(RpcRequestError);
      expect((refused as RpcRequestError).code).toBe(RoomCode.MEDIA_GENERIC);
      expect((refused as RpcRequestError).message).toMatch(
        /cannot record: RECORDINGS_DIR .* is not a writable directory/,
      );
    } finally {
      await bridge.stop();
      await worker.close();
    }
  });
});
