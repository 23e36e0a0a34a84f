/**
 * RecorderEndpoint on the embedded media server with input kurento-client
 * would not send (raw frames): every malformed constructor param and URI is
 * refused with an error that names it, nothing is created or left behind, and
 * the server keeps answering. Plus what only the embedded server promises: a
 * source in another codec is reported, and a recorder released while
 * recording still leaves a complete file.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { RTCPeerConnection, RtpHeader, RtpPacket, useH264, useOPUS } from "werift";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type MediaServerHandle, startMediaServer } from "../../media-server/index.ts";
import { startVp8Media, vp8Frames } from "../integration/vp8-media.ts";
import { RawKurentoClient, type ReplyFrame } from "./helpers/raw-client.ts";
import { createClientPeer, waitFor } from "./helpers/werift-peer.ts";

const run = promisify(execFile);
/** Bound of every wait: it only guards against a hang. */
const WAIT_MS = 30_000;

let server: MediaServerHandle;
let client: RawKurentoClient | undefined;
let dir: string;
const peers: RTCPeerConnection[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "recorder-bad-input-"));
  server = await startMediaServer({ port: 0, webrtc: { loopbackOnly: true }, sessionGraceMs: 300, log: () => {} });
});

afterAll(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const peer of peers.splice(0)) await peer.close();
  await client?.close();
  client = undefined;
  await waitFor(
    () => server.stats().objects === 0 && server.stats().sessions === 0,
    WAIT_MS,
    "every object and session released",
  );
});

async function newPipeline(): Promise<{ raw: RawKurentoClient; pipeline: string }> {
  const raw = await RawKurentoClient.connect(server.url);
  client = raw;
  const pipeline = String(await raw.value("create", { type: "MediaPipeline", constructorParams: {} }));
  return { raw, pipeline };
}

function uri(name: string): string {
  return pathToFileURL(join(dir, name)).href;
}

function createRecorder(raw: RawKurentoClient, params: Record<string, unknown>): Promise<ReplyFrame> {
  return raw.call("create", { type: "RecorderEndpoint", constructorParams: params });
}

async function invoke(raw: RawKurentoClient, object: string, operation: string, operationParams = {}) {
  return raw.call("invoke", { object, operation, operationParams });
}

/** The `onEvent` notifications of `type` the raw client has received for `object`. */
function eventsOf(raw: RawKurentoClient, object: string, type: string): Array<Record<string, unknown>> {
  return raw.events
    .map((frame) => (frame.params?.value ?? {}) as { object?: string; type?: string; data?: Record<string, unknown> })
    .filter((value) => value.object === object && value.type === type)
    .map((value) => value.data ?? {});
}

async function subscribe(raw: RawKurentoClient, object: string, types: readonly string[]): Promise<void> {
  for (const type of types) await raw.value("subscribe", { object, type });
}

/** A server endpoint receiving from a werift peer that offers `peer`'s codecs; resolves once connected. */
async function publishFrom(raw: RawKurentoClient, pipeline: string, peer: RTCPeerConnection): Promise<string> {
  peers.push(peer);
  const endpoint = String(
    await raw.value("create", { type: "WebRtcEndpoint", constructorParams: { mediaPipeline: pipeline } }),
  );
  await peer.setLocalDescription(await peer.createOffer());
  const answer = await raw.value("invoke", {
    object: endpoint,
    operation: "processOffer",
    operationParams: { offer: peer.localDescription?.sdp ?? "" },
  });
  await peer.setRemoteDescription({ type: "answer", sdp: String(answer) });
  // Non-trickle on the server side: processOffer's answer gathers nothing, so gather and wait for the pair.
  await subscribe(raw, endpoint, ["IceCandidateFound"]);
  await invoke(raw, endpoint, "gatherCandidates");
  let added = 0;
  await waitFor(
    async () => {
      const found = eventsOf(raw, endpoint, "IceCandidateFound");
      for (const candidate of found.slice(added)) {
        const value = candidate.candidate as { candidate: string; sdpMid: string; sdpMLineIndex: number };
        await peer.addIceCandidate(value).catch(() => undefined);
      }
      added = found.length;
      return peer.connectionState === "connected";
    },
    WAIT_MS,
    "the publisher to connect",
  );
  return endpoint;
}

describe("RecorderEndpoint constructor params", () => {
  it("refuses missing or mistyped params with -32602, naming the field; nothing is created", async () => {
    const { raw, pipeline } = await newPipeline();
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ mediaPipeline: pipeline }, "uri"],
      [{ mediaPipeline: pipeline, uri: 42 }, "uri"],
      [{ mediaPipeline: pipeline, uri: "" }, "uri"],
      [{ mediaPipeline: pipeline, uri: `file:///${"x".repeat(5000)}.webm` }, "uri"],
      [{ mediaPipeline: pipeline, uri: uri("a.webm"), mediaProfile: 7 }, "mediaProfile"],
      [{ mediaPipeline: pipeline, uri: uri("a.webm"), mediaProfile: null }, "mediaProfile"],
      [{ mediaPipeline: pipeline, uri: uri("a.webm"), stopOnEndOfStream: "yes" }, "stopOnEndOfStream"],
      [{ uri: uri("a.webm") }, "mediaPipeline"],
      [{ mediaPipeline: 12, uri: uri("a.webm") }, "mediaPipeline"],
    ];
    for (const [params, field] of cases) {
      const reply = await createRecorder(raw, params);
      expect(reply.error, JSON.stringify(params).slice(0, 100)).toMatchObject({ code: -32602 });
      expect(reply.error?.message).toContain(field);
    }
    expect(server.stats().objects).toBe(1);
    expect(existsSync(join(dir, "a.webm"))).toBe(false);
  });

  it("refuses URIs it cannot record to (40107, naming the URI): other schemes, other hosts, relative, directories, NUL", async () => {
    const { raw, pipeline } = await newPipeline();
    const refused = [
      "http://127.0.0.1:9/upload.webm",
      "https://example.com/x.webm",
      "ftp://example.com/x.webm",
      "s3://bucket/x.webm",
      "file://otherhost/tmp/x.webm",
      "relative.webm",
      "not a uri",
      "/tmp/no-scheme.webm",
      `${pathToFileURL(dir).href}/`,
      "file:///tmp/a%00b.webm",
      "file:///tmp/a%2Fb.webm",
    ];
    for (const value of refused) {
      const reply = await createRecorder(raw, { mediaPipeline: pipeline, uri: value });
      expect(reply.error, value).toMatchObject({
        code: 40107,
        data: { type: "MEDIA_OBJECT_ILLEGAL_PARAM_ERROR", embeddedMediaServer: true },
      });
      expect(reply.error?.message).toContain(value);
    }
    // The forms of a local file URI that are accepted.
    for (const value of [uri("plain.webm"), `file://localhost${join(dir, "host.webm")}`, uri("with space.webm")]) {
      const reply = await createRecorder(raw, { mediaPipeline: pipeline, uri: value });
      expect(reply.error, value).toBeUndefined();
      expect(await raw.value("invoke", { object: String(reply.result?.value), operation: "getUri" })).toBe(value);
    }
  });

  it("refuses profiles: outside KMS's MediaProfileSpecType 40001 (as KMS), KMS profiles it does not record 40107; each named", async () => {
    const { raw, pipeline } = await newPipeline();
    for (const profile of ["webm", "WEBM_HD", "OGG", "", "WEBM "]) {
      const reply = await createRecorder(raw, { mediaPipeline: pipeline, uri: uri("p.webm"), mediaProfile: profile });
      expect(reply.error, profile).toMatchObject({
        code: 40001,
        data: { type: "MARSHALL_ERROR", mediaProfile: profile },
      });
      expect(reply.error?.message).toContain("Invalid value for 'MediaProfileSpecType'");
      expect(reply.error?.message).toContain(`"${profile}"`);
    }
    const notRecorded = [
      "MKV",
      "MP4",
      "MKV_VIDEO_ONLY",
      "MKV_AUDIO_ONLY",
      "MP4_VIDEO_ONLY",
      "MP4_AUDIO_ONLY",
      "JPEG_VIDEO_ONLY",
      "KURENTO_SPLIT_RECORDER",
      "FLV",
    ];
    for (const profile of notRecorded) {
      const reply = await createRecorder(raw, { mediaPipeline: pipeline, uri: uri("p.webm"), mediaProfile: profile });
      expect(reply.error, profile).toMatchObject({ code: 40107, data: { mediaProfile: profile } });
      expect(reply.error?.message).toContain(`mediaProfile ${profile} is not supported`);
    }
    for (const profile of ["WEBM", "WEBM_VIDEO_ONLY", "WEBM_AUDIO_ONLY"]) {
      const reply = await createRecorder(raw, { mediaPipeline: pipeline, uri: uri("p.webm"), mediaProfile: profile });
      expect(reply.error, profile).toBeUndefined();
    }
  });

  it("mediaPipeline must be the caller's own pipeline: unknown or another session's 40101, another type 40107", async () => {
    const { raw, pipeline } = await newPipeline();
    const endpoint = String(
      await raw.value("create", { type: "WebRtcEndpoint", constructorParams: { mediaPipeline: pipeline } }),
    );
    const notPipeline = await createRecorder(raw, { mediaPipeline: endpoint, uri: uri("x.webm") });
    expect(notPipeline.error).toMatchObject({ code: 40107 });
    const unknown = await createRecorder(raw, { mediaPipeline: "nope_kurento.MediaPipeline", uri: uri("x.webm") });
    expect(unknown.error).toMatchObject({ code: 40101 });

    const other = await RawKurentoClient.connect(server.url);
    try {
      const stolen = await createRecorder(other, { mediaPipeline: pipeline, uri: uri("x.webm") });
      expect(stolen.error).toMatchObject({ code: 40101 });
    } finally {
      await other.close();
    }
  });
});

describe("RecorderEndpoint operations", () => {
  it("stop, pause and stopAndWait before record() do nothing (no event, STOP, as KMS); unknown operations are 40105", async () => {
    const { raw, pipeline } = await newPipeline();
    const recorder = String(
      (await createRecorder(raw, { mediaPipeline: pipeline, uri: uri("idle.webm") })).result?.value,
    );
    await subscribe(raw, recorder, ["UriEndpointStateChanged", "Recording", "Paused", "Stopped", "Error"]);
    for (const operation of ["stop", "pause", "stopAndWait"]) {
      expect((await invoke(raw, recorder, operation)).error, operation).toBeUndefined();
    }
    expect(await raw.value("invoke", { object: recorder, operation: "getState" })).toBe("STOP");
    for (const operation of ["recordAndWait", "getMaxOutputBitrate", "setUri", "toString"]) {
      expect((await invoke(raw, recorder, operation)).error, operation).toMatchObject({ code: 40105 });
    }
    // Extra params are ignored, as for every operation without params.
    expect((await invoke(raw, recorder, "getState", { verbose: true })).error).toBeUndefined();
    expect(raw.events).toEqual([]);
    expect(existsSync(join(dir, "idle.webm"))).toBe(false);
  });

  it("record() creates the file at once, empty (as KMS), and the missing directories; without media it stays STOP and stop() leaves it empty", async () => {
    const { raw, pipeline } = await newPipeline();
    const file = join(dir, "made", "on", "record.webm");
    const recorder = String(
      (await createRecorder(raw, { mediaPipeline: pipeline, uri: uri("made/on/record.webm") })).result?.value,
    );
    await subscribe(raw, recorder, ["UriEndpointStateChanged", "Recording", "Stopped"]);
    expect(existsSync(file)).toBe(false);
    expect((await invoke(raw, recorder, "record")).error).toBeUndefined();
    expect(statSync(file).size).toBe(0);
    expect(await raw.value("invoke", { object: recorder, operation: "getState" })).toBe("STOP");
    expect((await invoke(raw, recorder, "stopAndWait")).error).toBeUndefined();
    expect(statSync(file).size).toBe(0);
    expect(raw.events).toEqual([]);
  });

  it("record() where the file cannot be created: as KMS 7.2, record() succeeds, an Error (RESOURCE_ERROR_OPEN, errorCode 6) says why, the state stays STOP", async () => {
    const { raw, pipeline } = await newPipeline();
    const blocker = join(dir, "a-file");
    writeFileSync(blocker, "not a directory");
    const target = join(blocker, "x.webm");
    const recorder = String(
      (await createRecorder(raw, { mediaPipeline: pipeline, uri: pathToFileURL(target).href })).result?.value,
    );
    await subscribe(raw, recorder, ["Error", "Recording"]);
    expect((await invoke(raw, recorder, "record")).error).toBeUndefined();
    await waitFor(() => eventsOf(raw, recorder, "Error").length > 0, WAIT_MS, "the recorder's Error");
    const [error] = eventsOf(raw, recorder, "Error");
    expect(error).toMatchObject({ type: "RESOURCE_ERROR_OPEN", errorCode: 6 });
    expect(String(error?.description)).toContain(`Could not open file "${target}" for writing`);
    expect(await raw.value("invoke", { object: recorder, operation: "getState" })).toBe("STOP");
    expect(eventsOf(raw, recorder, "Recording")).toEqual([]);
  });
});

describe("RecorderEndpoint media the embedded server cannot record, and release while recording", () => {
  it("H.264 video from the source: one Error (UNSUPPORTED_MEDIA_TYPE, naming the codec), the video is not recorded", async () => {
    const { raw, pipeline } = await newPipeline();
    const peer = new RTCPeerConnection({
      iceServers: [],
      bundlePolicy: "max-bundle",
      iceAdditionalHostAddresses: ["127.0.0.1"],
      iceInterfaceAddresses: { udp4: "127.0.0.1" },
      iceUseIpv6: false,
      codecs: {
        audio: [useOPUS({ payloadType: 109 })],
        video: [
          useH264({
            payloadType: 102,
            parameters: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
          }),
        ],
      },
    });
    for (const transport of peer.iceTransports) transport.connection.stunServer = undefined;
    const video = peer.addTransceiver("video", { direction: "sendonly" });
    const setLocal = peer.setLocalDescription.bind(peer);
    peer.setLocalDescription = ((description?: Parameters<typeof setLocal>[0]) => {
      for (const transport of peer.iceTransports) transport.connection.stunServer = undefined;
      return setLocal(description);
    }) as typeof peer.setLocalDescription;
    const endpoint = await publishFrom(raw, pipeline, peer);
    const recorder = String(
      (await createRecorder(raw, { mediaPipeline: pipeline, uri: uri("h264.webm"), mediaProfile: "WEBM_VIDEO_ONLY" }))
        .result?.value,
    );
    await subscribe(raw, recorder, ["Error", "Recording"]);
    await invoke(raw, endpoint, "connect", { sink: recorder });
    await invoke(raw, recorder, "record");
    let sequenceNumber = 0;
    const timer = setInterval(() => {
      sequenceNumber += 1;
      // A single NAL unit (an IDR slice header's first bytes): the codec is what matters here.
      const header = new RtpHeader({
        payloadType: 102,
        sequenceNumber,
        timestamp: sequenceNumber * 3000,
        marker: true,
      });
      video.sender.sendRtp(new RtpPacket(header, Buffer.from([0x65, 0x88, 0x84, 0x00]))).catch(() => {});
    }, 30);
    try {
      await waitFor(() => eventsOf(raw, recorder, "Error").length > 0, WAIT_MS, "the recorder's Error");
      // More packets came since; still one report.
      await waitFor(() => sequenceNumber > 40, WAIT_MS, "more H.264 packets");
    } finally {
      clearInterval(timer);
    }
    const errors = eventsOf(raw, recorder, "Error");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ type: "UNSUPPORTED_MEDIA_TYPE", errorCode: 40005 });
    expect(String(errors[0]?.description)).toContain("video/h264");
    expect(eventsOf(raw, recorder, "Recording")).toEqual([]);
    expect(await raw.value("invoke", { object: recorder, operation: "getState" })).toBe("STOP");
  });

  it("a recorder released while recording (no stop) still leaves a complete, decodable file", async () => {
    const { raw, pipeline } = await newPipeline();
    const peer = createClientPeer();
    const video = peer.addTransceiver("video", { direction: "sendonly" });
    const endpoint = await publishFrom(raw, pipeline, peer);
    const file = join(dir, "released.webm");
    const recorder = String(
      (
        await createRecorder(raw, {
          mediaPipeline: pipeline,
          uri: uri("released.webm"),
          mediaProfile: "WEBM_VIDEO_ONLY",
        })
      ).result?.value,
    );
    await subscribe(raw, recorder, ["Recording"]);
    await invoke(raw, endpoint, "connect", { sink: recorder });
    await invoke(raw, recorder, "record");
    const media = startVp8Media(video, vp8Frames());
    try {
      await waitFor(() => eventsOf(raw, recorder, "Recording").length > 0, WAIT_MS, "Recording");
      // Past the clip's next keyframe (one a second), so the file has pictures.
      await waitFor(() => statSync(file).size > 20_000, WAIT_MS, "a second of video on disk");
      // The release answers once the file is complete.
      expect((await raw.call("release", { object: recorder })).error).toBeUndefined();
    } finally {
      media.stop();
    }
    const { stdout } = await run("ffprobe", [
      ...["-v", "error", "-of", "json", "-show_entries", "format=duration:stream=codec_name", file],
    ]);
    const probed = JSON.parse(stdout) as { format: { duration: string }; streams: Array<{ codec_name: string }> };
    expect(probed.streams.map((stream) => stream.codec_name)).toEqual(["vp8"]);
    expect(Number(probed.format.duration)).toBeGreaterThan(0.5);
    const { stderr } = await run("ffmpeg", ["-v", "error", "-i", file, "-f", "null", "-"]);
    expect(stderr).toBe("");
  });
});
