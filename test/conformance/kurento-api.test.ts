/**
 * Side-by-side conformance: the same kurento-client call sequences against
 * the back end MEDIA_BACKEND names (the `integration` project: the embedded
 * media server; `integration-kms`: a real KMS from KMS_HOME), asserting what
 * kurento-client observes. KMS is the reference: an assertion that holds on
 * one back end only is in a test whose name says which back end and why
 * (docs/media-server.md lists every difference), never a silent skip.
 *
 * Calls that may fail use kurento-client's callback form, as the bridge does
 * (bridge/media/kurento-adapter.ts): its promise form hands failures to a
 * no-op callback and resolves anyway.
 */
import type { RTCDataChannel } from "werift";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hasFaceOverlayFilter, hasFactory } from "../../bridge/media/kurento-adapter.ts";
import { mediaBackendFromEnv } from "../../scripts/system.ts";
import { type MediaBackendHandle, startMediaBackend } from "../helpers/media-backend.ts";
import { type Candidate, createClientPeer, stripCandidates, type TestPeer, testPeer } from "../bridge/helpers/peers.ts";
import { startVp8Media, vp8Frames } from "../integration/vp8-media.ts";
import {
  connectKurento,
  iceCandidate,
  type KurentoClient,
  type KurentoMediaElement,
  type KurentoMediaObject,
  type KurentoPipeline,
  type KurentoWebRtcEndpoint,
} from "../media-server/helpers/kurento.ts";
import { RawKurentoClient } from "../media-server/helpers/raw-client.ts";
import { waitFor } from "../media-server/helpers/werift-peer.ts";

const BACKEND = mediaBackendFromEnv();
const KMS = BACKEND === "kms";
/** Bound of every wait: only a guard against a hang. */
const WAIT_MS = 30_000;

let url: string;
let server: MediaBackendHandle | undefined;
let client: KurentoClient;

beforeAll(async () => {
  server = await startMediaBackend(BACKEND);
  url = server.url;
  client = await connectKurento(url);
});

afterAll(async () => {
  client?.close();
  await server?.stop();
});

function objectCount(): Promise<number> {
  if (!server) throw new Error("no server");
  return server.objectCount();
}

/** A kurento-client call in callback form (failures reach us), as a promise. */
function call<T = unknown>(target: object, method: string, ...args: unknown[]): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const fn = (target as Record<string, unknown>)[method];
    if (typeof fn !== "function") throw new Error(`${method} is not a kurento-client method`);
    fn.call(target, ...args, (error: unknown, result: T) => (error ? reject(error) : resolve(result)));
  });
}

interface KurentoFailure {
  code: unknown;
  type: unknown;
  message: string;
}

/** What kurento-client hands the callback on failure: the JSON-RPC error's code, data.type and message. */
async function failure(promise: Promise<unknown>): Promise<KurentoFailure> {
  try {
    await promise;
  } catch (error) {
    const shape = error as { code?: unknown; data?: { type?: unknown }; message?: unknown };
    return { code: shape.code, type: shape.data?.type, message: String(shape.message ?? "") };
  }
  throw new Error("the call succeeded; a failure was expected");
}

/** Every pipeline a test made: released after each test, so one failure does not leave objects to the next. */
const made: KurentoPipeline[] = [];

afterEach(async () => {
  for (const pipeline of made.splice(0)) await call(pipeline, "release").catch(() => undefined);
});

async function newPipeline(): Promise<KurentoPipeline> {
  const pipeline = await call<KurentoPipeline>(client, "create", "MediaPipeline");
  made.push(pipeline);
  return pipeline;
}

function endpoint(pipeline: KurentoPipeline, params: Record<string, unknown> = {}): Promise<KurentoWebRtcEndpoint> {
  return call<KurentoWebRtcEndpoint>(pipeline, "create", "WebRtcEndpoint", params);
}

function passThrough(pipeline: KurentoPipeline): Promise<KurentoMediaElement> {
  return call<KurentoMediaElement>(pipeline, "create", "PassThrough", {});
}

/** Sources of `sink` as `type:source-id`, sorted (the two servers list them in different orders). */
async function sources(sink: KurentoMediaElement): Promise<string[]> {
  // ElementConnectionData: kurento-client leaves `source` as the id string the server sent.
  const connections = await call<Array<{ type: string; source: string }>>(sink, "getSourceConnections");
  return connections.map((connection) => `${connection.type}:${connection.source}`).sort();
}

function release(object: KurentoMediaObject): Promise<void> {
  return call(object, "release");
}

/** Trickle ICE both ways between an endpoint and a werift test peer; the server's candidates are counted. */
function trickle(target: KurentoWebRtcEndpoint, peer: () => TestPeer | undefined): { fromServer: Candidate[] } {
  const fromServer: Candidate[] = [];
  target.on("IceCandidateFound", (event) => {
    const candidate = event.candidate as Candidate;
    fromServer.push(candidate);
    void peer()?.addRemote(candidate);
  });
  return { fromServer };
}

function sendToServer(target: KurentoWebRtcEndpoint): (candidate: Candidate) => void {
  return (candidate) => {
    void call(target, "addIceCandidate", iceCandidate(candidate)).catch(() => undefined);
  };
}

describe(`the Kurento API as kurento-client sees it (${BACKEND})`, () => {
  it("ServerManager: getInfo says KMS 7.x with the core, elements and filters modules; getPipelines lists a new pipeline; FaceOverlayFilter and RecorderEndpoint listed on both (the embedded server runs the filter on GStreamer, installed by .ci/run)", async () => {
    const manager = await call<KurentoMediaObject>(client, "getServerManager");
    const info = await call<{ type: string; version: string; modules: Array<{ name: string }> }>(manager, "getInfo");
    expect(info.type).toBe("KMS");
    expect(info.version).toMatch(/^7\./);
    expect(info.modules.map((module) => module.name)).toEqual(expect.arrayContaining(["core", "elements", "filters"]));
    // What the bridge reads to offer the hat (`supportsFilters`).
    expect(hasFaceOverlayFilter(info)).toBe(true);
    // What the bridge reads to offer recording (`supportsRecording`).
    expect(hasFactory(info, "RecorderEndpoint")).toBe(true);

    const pipeline = await newPipeline();
    const listed = await call<KurentoMediaObject[]>(manager, "getPipelines");
    expect(listed.map((entry) => entry.id)).toContain(pipeline.id);
    await release(pipeline);
    expect(await objectCount()).toBe(0);
  });

  it("create: MediaPipeline, WebRtcEndpoint and PassThrough with KMS-format ids; children, parent, name (default: the id) and tags; describe through getMediaobjectById", async () => {
    const pipeline = await newPipeline();
    expect(pipeline.id).toMatch(/^[0-9a-f-]{36}_kurento\.MediaPipeline$/);
    const webrtc = await endpoint(pipeline);
    const pass = await passThrough(pipeline);
    expect(webrtc.id).toMatch(new RegExp(`^${pipeline.id}/[0-9a-f-]{36}_kurento\\.WebRtcEndpoint$`));
    expect(pass.id).toMatch(new RegExp(`^${pipeline.id}/[0-9a-f-]{36}_kurento\\.PassThrough$`));
    const children = await call<KurentoMediaObject[]>(pipeline, "getChildren");
    expect(children.map((child) => child.id).sort()).toEqual([webrtc.id, pass.id].sort());
    expect((await call<KurentoMediaObject>(webrtc, "getParent")).id).toBe(pipeline.id);
    expect((await call<KurentoMediaObject>(webrtc, "getMediaPipeline")).id).toBe(pipeline.id);
    expect(await call(pipeline, "getName")).toBe(pipeline.id);
    await call(pipeline, "setName", "conformance");
    expect(await call(pipeline, "getName")).toBe("conformance");
    await call(pipeline, "addTag", "owner", "bridge-1");
    expect(await call(pipeline, "getTag", "owner")).toBe("bridge-1");
    const tags = await call<Array<{ key: string; value: string }>>(pipeline, "getTags");
    expect(tags.map(({ key, value }) => ({ key, value }))).toEqual([{ key: "owner", value: "bridge-1" }]);
    expect(await failure(call(pipeline, "getTag", "missing"))).toMatchObject({
      code: 40110,
      type: "MEDIA_OBJECT_TAG_KEY_NOT_FOUND",
    });
    // kurento-client's getMediaobjectById asks the server to `describe` the id.
    const found = await call<KurentoMediaObject>(client, "getMediaobjectById", webrtc.id);
    expect(found.id).toBe(webrtc.id);
    expect(await call(found, "getMediaState")).toBe("DISCONNECTED");
    expect(await call(webrtc, "getConnectionState")).toBe("DISCONNECTED");
    await release(pipeline);
    expect(await objectCount()).toBe(0);
  });

  it("connect: a new connect to a sink replaces its previous source (per media type); connect and disconnect by media type; a disconnect naming a replaced source succeeds and cuts the sink's current source", async () => {
    const pipeline = await newPipeline();
    const a = await endpoint(pipeline);
    const b = await endpoint(pipeline);
    const pass = await passThrough(pipeline);
    const all = (source: KurentoMediaObject): string[] =>
      ["AUDIO", "DATA", "VIDEO"].map((type) => `${type}:${source.id}`);

    await call(a, "connect", pass);
    expect(await sources(pass)).toEqual(all(a));
    // b takes over every media type of the sink; a keeps no sink connection.
    await call(b, "connect", pass);
    expect(await sources(pass)).toEqual(all(b));
    expect(await call<unknown[]>(a, "getSinkConnections")).toEqual([]);
    // A disconnect naming a replaced (or never connected) source is not an error, and cuts the sink's
    // CURRENT source: KMS unlinks the sink's side (the embedded server does the same, on purpose).
    await call(a, "disconnect", pass);
    expect(await sources(pass)).toEqual([]);
    await call(b, "connect", pass, "VIDEO");
    await call(a, "disconnect", pass, "VIDEO");
    expect(await sources(pass)).toEqual([]);

    await call(a, "connect", b, "AUDIO");
    expect(await sources(b)).toEqual([`AUDIO:${a.id}`]);
    await call(a, "connect", b, "VIDEO");
    expect(await sources(b)).toEqual([`AUDIO:${a.id}`, `VIDEO:${a.id}`]);
    await call(a, "disconnect", b, "AUDIO");
    expect(await sources(b)).toEqual([`VIDEO:${a.id}`]);
    await call(a, "disconnect", b);
    expect(await sources(b)).toEqual([]);
    await release(pipeline);
    expect(await objectCount()).toBe(0);
  });

  it("errors as kurento-client surfaces them: unknown object 40101, getTag 40110, bad SDP 40201, processAnswer without an offer 40209, a second negotiation 40208, unknown event 40106, unknown session 40007, unknown method -32601", async () => {
    const pipeline = await newPipeline();
    const webrtc = await endpoint(pipeline);
    const other = await endpoint(pipeline);
    expect(
      await failure(call(client, "getMediaobjectById", `${pipeline.id}/nope_kurento.WebRtcEndpoint`)),
    ).toMatchObject({ code: 40101, type: "MEDIA_OBJECT_NOT_FOUND" });
    expect(await failure(call(webrtc, "processOffer", "not an SDP"))).toMatchObject({
      code: 40201,
      type: "SDP_PARSE_ERROR",
    });
    expect(await failure(call(webrtc, "processAnswer", "v=0\r\n"))).toMatchObject({
      code: 40209,
      type: "SDP_END_POINT_NOT_OFFER_GENERATED",
    });
    expect(await call<string>(other, "generateOffer")).toMatch(/^v=0\r\n/);
    expect(await failure(call(other, "generateOffer"))).toMatchObject({
      code: 40208,
      type: "SDP_END_POINT_ALREADY_NEGOTIATED",
    });

    // Frames kurento-client never sends, on a raw socket of their own (its own session and pipeline).
    const raw = await RawKurentoClient.connect(url);
    try {
      const created = await raw.call("create", { type: "MediaPipeline", constructorParams: {} });
      const sessionId = created.result?.sessionId;
      const rawPipeline = created.result?.value;
      const unknownEvent = await raw.call("subscribe", { object: rawPipeline, type: "NoSuchEvent", sessionId });
      expect(unknownEvent.error).toMatchObject({ code: 40106, data: { type: "MEDIA_OBJECT_EVENT_NOT_SUPPORTED" } });
      const unknownMethod = await raw.call("frobnicate", { sessionId });
      expect(unknownMethod.error?.code).toBe(-32601);
      expect((await raw.call("connect", { sessionId: "no-such-session" })).error).toMatchObject({
        code: 40007,
        data: { type: "INVALID_SESSION" },
      });
      expect((await raw.call("release", { object: rawPipeline, sessionId })).error).toBeUndefined();
    } finally {
      await raw.close();
    }
    await release(pipeline);
    expect(await objectCount()).toBe(0);
  });

  it(`errors that differ by back end (${KMS ? "KMS: 40001 MARSHALL_ERROR for a bad operation parameter, 40008 for an unknown operation, a second release succeeds" : "embedded: -32602 INVALID_PARAMS for a bad operation parameter, 40105 for an unknown operation, a second release is 40101"})`, async () => {
    const pipeline = await newPipeline();
    const webrtc = await endpoint(pipeline);
    const badParameter = await failure(call(webrtc, "setMaxVideoSendBandwidth", "fast"));
    expect(badParameter).toMatchObject(
      KMS ? { code: 40001, type: "MARSHALL_ERROR" } : { code: -32602, type: "INVALID_PARAMS" },
    );
    expect(badParameter.message).toMatch(/maxVideoSendBandwidth/);
    const raw = await RawKurentoClient.connect(url);
    try {
      const created = await raw.call("create", { type: "MediaPipeline", constructorParams: {} });
      const sessionId = created.result?.sessionId;
      const object = created.result?.value;
      const unknownOperation = await raw.call("invoke", {
        object,
        operation: "frobnicate",
        operationParams: {},
        sessionId,
      });
      expect(unknownOperation.error).toMatchObject(
        KMS ? { code: 40008, data: { type: "MALFORMED_TRANSACTION" } } : { code: 40105 },
      );
      await raw.call("release", { object, sessionId });
      const again = await raw.call("release", { object, sessionId });
      if (KMS) expect(again.error).toBeUndefined();
      else expect(again.error).toMatchObject({ code: 40101 });
    } finally {
      await raw.close();
    }
    await release(pipeline);
    expect(await objectCount()).toBe(0);
  });

  it("FaceOverlayFilter and GStreamerFilter: both create them (the embedded server on GStreamer); setOverlayedImage and unsetOverlayedImage answer; a GStreamerFilter command KMS refuses is refused on both with the same 40001 texts", async () => {
    const pipeline = await newPipeline();
    const filter = await call<KurentoMediaObject>(pipeline, "create", "FaceOverlayFilter", {});
    expect(filter.id).toMatch(/_kurento\.FaceOverlayFilter$/);
    // A file:// image both can read (KMS runs on this machine): the demo's hat and its geometry.
    const hat = new URL("../../web/public/img/mario-wings.png", import.meta.url).href;
    await call(filter, "setOverlayedImage", hat, -0.35, -1.2, 1.6, 1.6);
    await call(filter, "unsetOverlayedImage");
    const flip = await call<KurentoMediaObject>(pipeline, "create", "GStreamerFilter", {
      command: "videoflip method=horizontal-flip",
    });
    expect(await call(flip, "getCommand")).toBe("videoflip method=horizontal-flip");
    for (const [command, text] of [
      ["videoflip ! videobalance", "Given command is not valid, only one element can be created"],
      ["videotestsrc", "Given command is not valid, pad templates don't match"],
      ["nosuchelement", 'GStreamer element cannot be created: no element "nosuchelement"'],
    ] as const) {
      expect(await failure(call(pipeline, "create", "GStreamerFilter", { command }))).toMatchObject({
        code: 40001,
        type: "MARSHALL_ERROR",
        message: expect.stringContaining(text),
      });
    }
    await release(pipeline);
    expect(await objectCount()).toBe(0);
  });

  it("release: a released pipeline takes its children (they are then unknown, 40101) and nothing is left", async () => {
    const pipeline = await newPipeline();
    const webrtc = await endpoint(pipeline);
    const pass = await passThrough(pipeline);
    await call(webrtc, "connect", pass);
    expect(await objectCount()).toBe(3);
    const childId = webrtc.id;
    await release(pipeline);
    expect(await failure(call(client, "getMediaobjectById", childId))).toMatchObject({ code: 40101 });
    expect(await objectCount()).toBe(0);
  });

  it(`sessions (differ by design): another client session ${KMS ? "sees and can release the first one's objects (KMS: getPipelines lists every session's)" : "can neither see nor release the first one's objects (embedded: 40101, as for an id that never existed)"}`, async () => {
    const pipeline = await newPipeline();
    const webrtc = await endpoint(pipeline);
    const second = await connectKurento(url);
    try {
      const manager = await call<KurentoMediaObject>(second, "getServerManager");
      const listed = (await call<KurentoMediaObject[]>(manager, "getPipelines")).map((entry) => entry.id);
      if (KMS) {
        expect(listed).toContain(pipeline.id);
        const theirs = await call<KurentoMediaObject>(second, "getMediaobjectById", webrtc.id);
        await release(theirs);
        // Gone for its owner too.
        expect(await failure(call(webrtc, "getMediaState"))).toMatchObject({ code: 40101 });
      } else {
        expect(listed).not.toContain(pipeline.id);
        expect(await failure(call(second, "getMediaobjectById", webrtc.id))).toMatchObject({ code: 40101 });
        const raw = await RawKurentoClient.connect(url);
        try {
          expect((await raw.call("release", { object: webrtc.id })).error).toMatchObject({ code: 40101 });
        } finally {
          await raw.close();
        }
        expect(await call(webrtc, "getMediaState")).toBe("DISCONNECTED");
      }
    } finally {
      second.close();
    }
    await release(pipeline);
    expect(await objectCount()).toBe(0);
  });

  it("media with real werift peers: processOffer (publisher) and generateOffer/processAnswer (subscriber), trickle ICE (IceCandidateFound, IceGatheringDone), ConnectionStateChanged CONNECTED, VP8 arrives; MediaStateChanged and MediaFlowIn/Out FLOWING on the embedded server only (KMS 7.2 sent none to a werift peer)", async () => {
    const pipeline = await newPipeline();
    const publisherEndpoint = await endpoint(pipeline);
    const subscriberEndpoint = await endpoint(pipeline);
    const seen: string[] = [];
    const record = (who: string, target: KurentoWebRtcEndpoint, event: string, field: string, extra?: string) =>
      target.on(event, (payload) => {
        const detail = extra === undefined ? "" : `${String(payload[extra])}:`;
        seen.push(`${who}:${event}:${detail}${String(payload[field])}`);
      });
    record("pub", publisherEndpoint, "ConnectionStateChanged", "newState");
    record("pub", publisherEndpoint, "MediaStateChanged", "newState");
    record("pub", publisherEndpoint, "MediaFlowInStateChanged", "state", "mediaType");
    record("sub", subscriberEndpoint, "ConnectionStateChanged", "newState");
    record("sub", subscriberEndpoint, "MediaFlowOutStateChanged", "state", "mediaType");
    let gatheringDone = 0;
    publisherEndpoint.on("IceGatheringDone", () => {
      gatheringDone += 1;
    });

    let publisher: TestPeer | undefined;
    const publisherIce = trickle(publisherEndpoint, () => publisher);
    publisher = testPeer("sendonly", sendToServer(publisherEndpoint));
    const answer = await call<string>(publisherEndpoint, "processOffer", await publisher.offer());
    expect(answer).toMatch(/^v=0\r\n/);
    expect(answer).toMatch(/m=video [\s\S]*a=recvonly/);
    await publisher.answer(answer);
    await call(publisherEndpoint, "gatherCandidates");
    await waitFor(() => gatheringDone > 0, WAIT_MS, "IceGatheringDone");
    expect(publisherIce.fromServer.length).toBeGreaterThan(0);
    expect(publisherIce.fromServer.every((candidate) => candidate.candidate.startsWith("candidate:"))).toBe(true);

    // The subscriber: the server offers, a werift peer answers recvonly.
    await call(publisherEndpoint, "connect", subscriberEndpoint);
    const subscriber = createClientPeer();
    const received: number[] = [0];
    subscriber.onTrack.subscribe((track) => {
      if (track.kind === "video") track.onReceiveRtp.subscribe(() => (received[0] = (received[0] ?? 0) + 1));
    });
    subscriberEndpoint.on("IceCandidateFound", (event) => {
      const candidate = event.candidate as Candidate;
      void subscriber.addIceCandidate({
        candidate: candidate.candidate,
        sdpMid: candidate.sdpMid ?? undefined,
        sdpMLineIndex: candidate.sdpMLineIndex,
      });
    });
    subscriber.onIceCandidate.subscribe((candidate) => {
      if (!candidate) return;
      const init = candidate.toJSON();
      sendToServer(subscriberEndpoint)({
        candidate: init.candidate ?? "",
        sdpMid: init.sdpMid ?? null,
        sdpMLineIndex: init.sdpMLineIndex ?? 0,
      });
    });
    const offer = await call<string>(subscriberEndpoint, "generateOffer");
    expect(offer).toMatch(/m=audio [\s\S]*m=video /);
    await subscriber.setRemoteDescription({ type: "offer", sdp: offer });
    for (const transceiver of subscriber.getTransceivers()) transceiver.setDirection("recvonly");
    await subscriber.setLocalDescription(await subscriber.createAnswer());
    const processed = await call<string>(
      subscriberEndpoint,
      "processAnswer",
      stripCandidates(subscriber.localDescription?.sdp ?? ""),
    );
    expect(processed).toMatch(/^v=0\r\n/);
    await call(subscriberEndpoint, "gatherCandidates");

    const media = startVp8Media(publisher.video, vp8Frames());
    try {
      await waitFor(() => (received[0] ?? 0) > 10, WAIT_MS, "VP8 at the subscriber");
      const expected = ["pub:ConnectionStateChanged:CONNECTED", "sub:ConnectionStateChanged:CONNECTED"];
      // KMS 7.2 sent neither MediaStateChanged nor MediaFlowIn/Out to this werift peer (while the VP8
      // flowed): asserted on the embedded server only (docs/media-server.md, differences).
      if (!KMS) {
        expected.push(
          "pub:MediaStateChanged:CONNECTED",
          "pub:MediaFlowInStateChanged:VIDEO:FLOWING",
          "sub:MediaFlowOutStateChanged:VIDEO:FLOWING",
        );
      }
      await waitFor(
        () => expected.every((entry) => seen.includes(entry)),
        WAIT_MS,
        `the state events (seen: ${seen.join(", ")})`,
      );
      if (!KMS) {
        expect(await call(publisherEndpoint, "isMediaFlowingIn", "VIDEO")).toBe(true);
        expect(await call(subscriberEndpoint, "isMediaFlowingOut", "VIDEO")).toBe(true);
      }
    } finally {
      media.stop();
      await publisher.close();
      await subscriber.close();
    }
    await release(pipeline);
    expect(await objectCount()).toBe(0);
  });

  it("DataChannel echoed by an endpoint connected to itself (DATA, no PassThrough) comes back", async () => {
    const pipeline = await newPipeline();
    const webrtc = await endpoint(pipeline, { useDataChannels: true });
    const echoed = await dataEcho(webrtc, async () => {
      await call(webrtc, "connect", webrtc);
    });
    expect(echoed).toBe("ping through the server");
    await release(pipeline);
    expect(await objectCount()).toBe(0);
  });

  it(`DataChannel through a PassThrough (endpoint → PassThrough → endpoint): ${KMS ? "KMS 7.2 does not echo it (its PassThrough has no data pads), the endpoint stays usable" : "the embedded server echoes it"}`, async () => {
    const pipeline = await newPipeline();
    const webrtc = await endpoint(pipeline, { useDataChannels: true });
    const pass = await passThrough(pipeline);
    const wire = async (): Promise<void> => {
      await call(webrtc, "connect", pass);
      await call(pass, "connect", webrtc);
    };
    // On KMS this watches for 5 s for a message that must NOT arrive; elsewhere the usual bound.
    const attempt = dataEcho(webrtc, wire, KMS ? 5000 : WAIT_MS);
    if (KMS) {
      expect(await attempt.catch((error: unknown) => String(error))).toMatch(/no echo/);
    } else {
      expect(await attempt).toBe("ping through the server");
    }
    await release(pipeline);
    expect(await objectCount()).toBe(0);
  });
});

/**
 * A werift peer opens a data channel to `target` (created with useDataChannels), `wire` connects the
 * graph, the peer sends one message once its channel is open and resolves with what comes back on a
 * channel of that label. Rejects with "no echo" when nothing came back `waitMs` after sending.
 */
async function dataEcho(target: KurentoWebRtcEndpoint, wire: () => Promise<void>, waitMs = WAIT_MS): Promise<string> {
  await wire();
  let peer: TestPeer | undefined;
  trickle(target, () => peer);
  peer = testPeer("sendrecv", sendToServer(target), { dataChannel: "chat" });
  const local = peer.channel;
  if (!local) throw new Error("no data channel");
  const echoes: string[] = [];
  const listen = (channel: RTCDataChannel): void => {
    channel.onMessage.subscribe((data) => echoes.push(typeof data === "string" ? data : data.toString("utf8")));
  };
  listen(local);
  peer.peer.onDataChannel.subscribe(listen);
  let opened = local.readyState === "open";
  local.stateChanged.subscribe((state) => {
    if (state === "open") opened = true;
  });
  try {
    await peer.answer(await call<string>(target, "processOffer", await peer.offer()));
    await call(target, "gatherCandidates");
    await waitFor(() => opened, WAIT_MS, "the data channel to open");
    local.send("ping through the server");
    const sent = Date.now();
    while (echoes.length === 0) {
      if (Date.now() - sent > waitMs) throw new Error(`no echo within ${waitMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return echoes[0] ?? "";
  } finally {
    await peer.close();
  }
}
