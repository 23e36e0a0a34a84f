import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type MediaServerHandle, startMediaServer } from "../../media-server/index.ts";
import { connectKurento } from "./helpers/kurento.ts";
import { RawKurentoClient, type ReplyFrame } from "./helpers/raw-client.ts";
import { createClientPeer, waitFor } from "./helpers/werift-peer.ts";

const GRACE_MS = 300;
/** The resume test's grace period: far longer than a resume takes, even on a loaded machine. */
const RESUME_GRACE_MS = 3000;
/** Bound of every wait: it only guards against a hang. */
const WAIT_MS = 30_000;
let server: MediaServerHandle;
let client: RawKurentoClient;

beforeAll(async () => {
  server = await startMediaServer({ port: 0, webrtc: { loopbackOnly: true }, sessionGraceMs: GRACE_MS, log: () => {} });
});

afterAll(async () => {
  await server?.close();
});

afterEach(async () => {
  await client?.close();
  // Whatever a test left behind goes with its session; nothing may leak.
  await waitFor(
    () => server.stats().objects === 0 && server.stats().sessions === 0,
    WAIT_MS,
    "every object and session released",
  );
});

async function newClient(): Promise<RawKurentoClient> {
  client = await RawKurentoClient.connect(server.url);
  return client;
}

async function endpointInNewPipeline(
  raw: RawKurentoClient,
): Promise<{ pipeline: string; endpoint: string; sessionId: string }> {
  const created = await raw.call("create", { type: "MediaPipeline", constructorParams: {} });
  expect(created.error).toBeUndefined();
  const pipeline = String(created.result?.value);
  const endpoint = String(
    await raw.value("create", { type: "WebRtcEndpoint", constructorParams: { mediaPipeline: pipeline } }),
  );
  return { pipeline, endpoint, sessionId: String(created.result?.sessionId) };
}

async function weriftOffer(): Promise<string> {
  const peer = createClientPeer();
  peer.addTransceiver("video", { direction: "sendonly" });
  await peer.setLocalDescription(await peer.createOffer());
  const sdp = peer.localDescription?.sdp ?? "";
  await peer.close();
  return sdp;
}

describe("malformed frames get JSON-RPC errors and the server keeps answering", () => {
  it("rejects bad JSON, non-objects, batches, wrong versions and unknown methods", async () => {
    const raw = await newClient();
    const parse = await raw.sendRaw("{not json");
    expect(parse).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32700 } });
    expect(parse.error?.message).toMatch(/^Parse error/);

    for (const frame of ["42", '"hello"', "null", "true"]) {
      expect(await raw.sendRaw(frame)).toMatchObject({
        id: null,
        error: { code: -32600, message: expect.stringContaining("JSON-RPC 2.0 object") },
      });
    }
    expect(await raw.sendRaw("[]")).toMatchObject({
      error: { code: -32600, message: expect.stringContaining("batch") },
    });

    const wrongVersion = await raw.sendRaw(JSON.stringify({ jsonrpc: "1.0", id: 7, method: "ping" }));
    expect(wrongVersion).toMatchObject({ id: 7, error: { code: -32600 } });
    expect(wrongVersion.error?.message).toContain("jsonrpc");

    const noMethod = await raw.sendRaw(JSON.stringify({ jsonrpc: "2.0", id: 8, params: {} }));
    expect(noMethod).toMatchObject({ id: 8, error: { code: -32600 } });

    const unknown = await raw.call("frobnicate", {});
    expect(unknown.error).toMatchObject({ code: -32601 });
    expect(unknown.error?.message).toContain("frobnicate");

    expect(await raw.call("ping", { interval: 5000 })).toMatchObject({ result: { value: "pong" } });
  });

  it("names the field when params have the wrong type", async () => {
    const raw = await newClient();
    const badCreate = await raw.call("create", { type: 42 });
    expect(badCreate.error).toMatchObject({ code: -32602 });
    expect(badCreate.error?.message).toContain("type");

    const notObjectParams = await raw.sendRaw(
      JSON.stringify({ jsonrpc: "2.0", id: 99, method: "invoke", params: "processOffer" }),
    );
    expect(notObjectParams).toMatchObject({ id: 99, error: { code: -32600 } });

    const { pipeline, endpoint } = await endpointInNewPipeline(raw);
    const badOffer = await raw.call("invoke", {
      object: endpoint,
      operation: "processOffer",
      operationParams: { offer: 123 },
    });
    expect(badOffer.error).toMatchObject({ code: -32602 });
    expect(badOffer.error?.message).toMatch(/processOffer.*offer/);

    const badBandwidth = await raw.call("invoke", {
      object: endpoint,
      operation: "setMaxVideoSendBandwidth",
      operationParams: { maxVideoSendBandwidth: "lots" },
    });
    expect(badBandwidth.error).toMatchObject({ code: -32602 });

    const missingSink = await raw.call("invoke", { object: endpoint, operation: "connect", operationParams: {} });
    expect(missingSink.error).toMatchObject({ code: -32602 });
    expect(missingSink.error?.message).toContain("sink");

    const endpointWithoutPipeline = await raw.call("create", { type: "WebRtcEndpoint", constructorParams: {} });
    expect(endpointWithoutPipeline.error).toMatchObject({ code: -32602 });
    expect(endpointWithoutPipeline.error?.message).toContain("mediaPipeline");

    const pipelineAsSink = await raw.call("invoke", {
      object: endpoint,
      operation: "connect",
      operationParams: { sink: pipeline },
    });
    expect(pipelineAsSink.error).toMatchObject({ code: 40107 });

    const unknownOperation = await raw.call("invoke", { object: endpoint, operation: "makeCoffee" });
    expect(unknownOperation.error).toMatchObject({ code: 40105 });
    expect(unknownOperation.error?.message).toContain("makeCoffee");
    // Names every object inherits are not operations either.
    for (const inherited of ["toString", "constructor", "hasOwnProperty", "__proto__"]) {
      const reply = await raw.call("invoke", { object: endpoint, operation: inherited });
      expect(reply.error, inherited).toMatchObject({ code: 40105 });
    }

    const unknownEvent = await raw.call("subscribe", { object: endpoint, type: "Teleported" });
    expect(unknownEvent.error).toMatchObject({ code: 40106 });

    await raw.value("release", { object: pipeline });
    expect(server.stats().objects).toBe(0);
  });

  it("answers createDataChannel like KMS, with no value, and keeps serving", async () => {
    const raw = await newClient();
    const createdPipeline = await raw.call("create", { type: "MediaPipeline", constructorParams: {} });
    const pipeline = String(createdPipeline.result?.value);
    const sessionId = String(createdPipeline.result?.sessionId);
    const endpoint = String(
      await raw.value("create", {
        type: "WebRtcEndpoint",
        constructorParams: { mediaPipeline: pipeline, useDataChannels: true },
      }),
    );
    const created = await raw.call("invoke", {
      object: endpoint,
      operation: "createDataChannel",
      operationParams: { label: "x" },
    });
    expect(created.error).toBeUndefined();
    expect(created.result).toEqual({ sessionId });
    expect(await raw.call("ping", {})).toMatchObject({ result: { value: "pong" } });
    await raw.value("release", { object: pipeline });
  });

  it("answers unknown object ids with 40101 and a second release with 40101 too", async () => {
    const raw = await newClient();
    const missing = "00000000-0000-0000-0000-000000000000_kurento.MediaPipeline/x_kurento.WebRtcEndpoint";
    for (const [method, params] of [
      ["invoke", { object: missing, operation: "getMediaState" }],
      ["describe", { object: missing }],
      ["release", { object: missing }],
      ["subscribe", { object: missing, type: "Error" }],
      ["create", { type: "WebRtcEndpoint", constructorParams: { mediaPipeline: "nope_kurento.MediaPipeline" } }],
    ] as const) {
      const reply = await raw.call(method, params);
      expect(reply.error, method).toMatchObject({ code: 40101, data: { type: "MEDIA_OBJECT_NOT_FOUND" } });
    }

    const { pipeline, endpoint } = await endpointInNewPipeline(raw);
    await raw.value("release", { object: pipeline });
    expect((await raw.call("release", { object: pipeline })).error).toMatchObject({ code: 40101 });
    // The pipeline took its endpoint with it.
    expect((await raw.call("release", { object: endpoint })).error).toMatchObject({ code: 40101 });
    expect(server.stats()).toMatchObject({ objects: 0, pipelines: 0 });
  });

  it("rejects invalid SDP with Kurento SDP errors and keeps the endpoint usable", async () => {
    const raw = await newClient();
    const { pipeline, endpoint } = await endpointInNewPipeline(raw);
    const garbage = await raw.call("invoke", {
      object: endpoint,
      operation: "processOffer",
      operationParams: { offer: "hello" },
    });
    expect(garbage.error).toMatchObject({ code: 40201, data: { type: "SDP_PARSE_ERROR" } });

    const noFingerprint =
      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n";
    const plain = await raw.call("invoke", {
      object: endpoint,
      operation: "processOffer",
      operationParams: { offer: noFingerprint },
    });
    expect(plain.error).toMatchObject({ code: 40201 });
    expect(plain.error?.message).toContain("fingerprint");

    const early = await raw.call("invoke", {
      object: endpoint,
      operation: "processAnswer",
      operationParams: { answer: noFingerprint },
    });
    expect(early.error).toMatchObject({ code: 40209 });

    const answer = await raw.value("invoke", {
      object: endpoint,
      operation: "processOffer",
      operationParams: { offer: await weriftOffer() },
    });
    expect(String(answer)).toMatch(/^v=0\r\n/);
    const again = await raw.call("invoke", {
      object: endpoint,
      operation: "processOffer",
      operationParams: { offer: await weriftOffer() },
    });
    expect(again.error).toMatchObject({ code: 40208 });
    await raw.value("release", { object: pipeline });
  });

  it("says which element types it cannot create", async () => {
    const raw = await newClient();
    const pipeline = String(await raw.value("create", { type: "MediaPipeline" }));
    const player = await raw.call("create", {
      type: "PlayerEndpoint",
      constructorParams: { mediaPipeline: pipeline, uri: "file:///tmp/x.webm" },
    });
    expect(player.error).toMatchObject({ code: 40100, data: { unsupported: "PlayerEndpoint" } });
    expect(player.error?.message).toContain("PlayerEndpoint is not supported by the embedded media server");
    await raw.value("release", { object: pipeline });
  });

  it("runs implicit transactions with newref references", async () => {
    const raw = await newClient();
    const reply = await raw.call("transaction", {
      operations: [
        { method: "create", params: { type: "MediaPipeline", constructorParams: {} } },
        { method: "create", params: { type: "PassThrough", constructorParams: { mediaPipeline: "newref:0" } } },
        // A type it lacks (FaceOverlayFilter now exists where GStreamer is installed: filters.test.ts).
        { method: "create", params: { type: "ImageOverlayFilter", constructorParams: { mediaPipeline: "newref:0" } } },
      ],
    });
    const results = reply.result?.value as Array<{ result?: { value: string }; error?: { code: number } }>;
    expect(results[0]?.result?.value).toMatch(/_kurento\.MediaPipeline$/);
    expect(results[1]?.result?.value.startsWith(`${results[0]?.result?.value}/`)).toBe(true);
    expect(results[2]?.error).toMatchObject({ code: 40100 });
    await raw.value("release", { object: results[0]?.result?.value });
  });
});

describe("sessions", () => {
  it("releases the objects of a client that vanishes mid-negotiation, and keeps serving others", async () => {
    const vanishing = await RawKurentoClient.connect(server.url);
    const abandoned = await endpointInNewPipeline(vanishing);
    vanishing.fire("invoke", {
      object: abandoned.endpoint,
      operation: "processOffer",
      operationParams: { offer: await weriftOffer() },
    });
    vanishing.fire("invoke", { object: abandoned.endpoint, operation: "gatherCandidates" });
    expect(server.stats()).toMatchObject({ objects: 2, sessions: 1 });
    await vanishing.close();
    await waitFor(
      () => server.stats().objects === 0 && server.stats().sessions === 0,
      WAIT_MS,
      "the vanished session's objects released",
    );

    // Releasing the pipeline while its endpoint is still negotiating: the offer fails cleanly or completes; nothing is left over.
    const raw = await newClient();
    const { pipeline, endpoint, sessionId } = await endpointInNewPipeline(raw);
    const offer = await weriftOffer();
    const offerId = raw.fire("invoke", { object: endpoint, operation: "processOffer", operationParams: { offer } });
    const releaseId = raw.fire("release", { object: pipeline });
    const replies = await raw.replies(2);
    const offerReply = replies.find((reply) => reply.id === offerId);
    const releaseReply = replies.find((reply) => reply.id === releaseId);
    expect(releaseReply).toEqual({ jsonrpc: "2.0", id: releaseId, result: { sessionId } });
    if (offerReply?.error) expect(offerReply.error).toMatchObject({ code: 40101 });
    else expect(String(offerReply?.result?.value)).toMatch(/^v=0/);
    expect(server.stats().objects).toBe(0);
    expect(await raw.call("ping", { interval: 5000 })).toMatchObject({ result: { value: "pong" } });
  });

  it("resumes a session with connect {sessionId} within the grace period, and answers 40007 for an unknown one", async () => {
    // Its own server, with a grace period long enough that the resume below never races it.
    const graceServer = await startMediaServer({
      port: 0,
      webrtc: { loopbackOnly: true },
      sessionGraceMs: RESUME_GRACE_MS,
      log: () => {},
    });
    try {
      const first = await RawKurentoClient.connect(graceServer.url);
      const created = await first.call("create", { type: "MediaPipeline" });
      const sessionId = String(created.result?.sessionId);
      const pipeline = String(created.result?.value);
      await first.close();

      // Until the server has seen the first socket close, the session is held there and a resume is refused (40007,
      // like an unknown session): retry, as kurento-client does.
      const raw = await RawKurentoClient.connect(graceServer.url);
      let resumed: ReplyFrame | undefined;
      await waitFor(
        async () => {
          resumed = await raw.call("connect", { sessionId });
          return resumed.result !== undefined;
        },
        WAIT_MS,
        "the session resumed",
      );
      expect(resumed).toMatchObject({ result: { sessionId } });

      // A control session abandoned after the resume: its grace period started later than the first socket's, so once
      // its objects are gone the first session's grace period is over too. It holds two objects and the resumed session
      // one: the count reaches 1 only if the control session went and the resumed one stayed.
      const control = await RawKurentoClient.connect(graceServer.url);
      const controlPipeline = String(await control.value("create", { type: "MediaPipeline" }));
      await control.value("create", { type: "PassThrough", constructorParams: { mediaPipeline: controlPipeline } });
      expect(graceServer.stats()).toMatchObject({ objects: 3, sessions: 2 });
      await control.close();
      await waitFor(() => graceServer.stats().objects === 1, WAIT_MS, "the control session's objects released");
      expect(graceServer.stats()).toMatchObject({ objects: 1, pipelines: 1, sessions: 1 });
      expect((await raw.call("describe", { object: pipeline, sessionId })).result).toMatchObject({
        type: "MediaPipeline",
        sessionId,
      });

      const unknown = await raw.call("connect", { sessionId: "no-such-session" });
      expect(unknown.error).toMatchObject({ code: 40007, data: { type: "INVALID_SESSION" } });
      await raw.close();
      await waitFor(
        () => graceServer.stats().objects === 0 && graceServer.stats().sessions === 0,
        WAIT_MS,
        "the resumed session's objects released after its socket closed",
      );
    } finally {
      await graceServer.close();
    }
  });

  it("gives kurento-client a readable error for a filter it lacks (ImageOverlayFilter)", async () => {
    const kurentoClient = await connectKurento(server.url);
    try {
      const pipeline = await kurentoClient.create("MediaPipeline");
      const failure = await pipeline.create("ImageOverlayFilter").then(
        () => undefined,
        (error: unknown) => error as Error & { code?: number },
      );
      expect(failure?.message).toContain("ImageOverlayFilter is not supported by the embedded media server");
      expect(failure?.code).toBe(40100);
      await pipeline.release();
    } finally {
      kurentoClient.close();
    }
    expect(server.stats().pipelines).toBe(0);
  });
});
