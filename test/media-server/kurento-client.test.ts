import type { RTCPeerConnection } from "werift";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MediaServerHandle, startMediaServer } from "../../media-server/index.ts";
import { connectKurento, iceCandidate, type KurentoClient, type KurentoWebRtcEndpoint } from "./helpers/kurento.ts";
import {
  countMarkedPackets,
  createClientPeer,
  startSyntheticMedia,
  stripCandidates,
  waitFor,
} from "./helpers/werift-peer.ts";

const VIDEO_MARKER = Buffer.from("edge-room video");
const AUDIO_MARKER = Buffer.from("edge-room audio");
/** Bound of every wait: it only guards against a hang (REMB comes once a second, everything else sooner). */
const WAIT_MS = 30_000;

let server: MediaServerHandle;
const peers: RTCPeerConnection[] = [];

beforeAll(async () => {
  server = await startMediaServer({ port: 0, webrtc: { loopbackOnly: true }, sessionGraceMs: 500, log: () => {} });
});

afterAll(async () => {
  await Promise.all(peers.map((peer) => peer.close()));
  await server?.close();
});

interface IceSeen {
  fromServer: number;
  toServer: number;
  /** Every addIceCandidate, either way: all must succeed. */
  added: Array<Promise<unknown>>;
}

/** Trickle ICE both ways: the server's candidates arrive as IceCandidateFound events, the peer's go through addIceCandidate. */
function trickle(endpoint: KurentoWebRtcEndpoint, peer: RTCPeerConnection, seen: IceSeen): void {
  endpoint.on("IceCandidateFound", (event) => {
    const candidate = event.candidate as { candidate: string; sdpMid: string; sdpMLineIndex: number };
    seen.fromServer += 1;
    seen.added.push(
      peer.addIceCandidate({
        candidate: candidate.candidate,
        sdpMid: candidate.sdpMid,
        sdpMLineIndex: candidate.sdpMLineIndex,
      }),
    );
  });
  peer.onIceCandidate.subscribe((candidate) => {
    if (!candidate) return;
    const init = candidate.toJSON();
    seen.toServer += 1;
    seen.added.push(
      endpoint.addIceCandidate(
        iceCandidate({ candidate: init.candidate ?? "", sdpMid: init.sdpMid, sdpMLineIndex: init.sdpMLineIndex }),
      ),
    );
  });
}

async function getJson(path: string): Promise<Record<string, unknown>> {
  const response = await fetch(`http://127.0.0.1:${server.port}${path}`);
  return (await response.json()) as Record<string, unknown>;
}

describe("the real kurento-client drives the embedded media server", () => {
  let client: KurentoClient;

  beforeAll(async () => {
    client = await connectKurento(server.url);
  });

  afterAll(() => client?.close());

  it("reports itself as KMS through the ServerManager", async () => {
    const manager = await client.getServerManager();
    const info = await manager.getInfo();
    expect(info.type).toBe("KMS");
    expect((info.modules as Array<{ name: string }>).map((module) => module.name)).toEqual([
      "core",
      "elements",
      "filters",
    ]);
    expect(server.stats().sessions).toBe(1);
  });

  it("forwards RTP from one werift peer to another through two WebRtcEndpoints, then frees everything on release", async () => {
    const pipeline = await client.create("MediaPipeline");
    expect(pipeline.id).toMatch(/^[0-9a-f-]{36}_kurento\.MediaPipeline$/);
    const publisherEndpoint = await pipeline.create("WebRtcEndpoint");
    const subscriberEndpoint = await pipeline.create("WebRtcEndpoint");
    expect(publisherEndpoint.id.startsWith(`${pipeline.id}/`)).toBe(true);
    expect(publisherEndpoint.id).toMatch(/_kurento\.WebRtcEndpoint$/);
    expect(server.stats()).toMatchObject({ objects: 3, pipelines: 1 });

    const mediaStates: string[] = [];
    const flowingIn: string[] = [];
    publisherEndpoint.on("MediaStateChanged", (event) => mediaStates.push(`publisher:${String(event.newState)}`));
    subscriberEndpoint.on("MediaStateChanged", (event) => mediaStates.push(`subscriber:${String(event.newState)}`));
    publisherEndpoint.on("MediaFlowInStateChanged", (event) =>
      flowingIn.push(`${String(event.mediaType)}:${String(event.state)}`),
    );
    let gatheringDone = 0;
    publisherEndpoint.on("IceGatheringDone", () => {
      gatheringDone += 1;
    });

    await publisherEndpoint.connect(subscriberEndpoint);
    const sinks = await publisherEndpoint.getSinkConnections("VIDEO");
    expect(sinks).toHaveLength(1);

    // Publisher: sendonly audio + video; the offer carries no candidates, so ICE depends on trickling.
    const publisher = createClientPeer();
    const subscriber = createClientPeer();
    peers.push(publisher, subscriber);
    const publisherIce: IceSeen = { fromServer: 0, toServer: 0, added: [] };
    const subscriberIce: IceSeen = { fromServer: 0, toServer: 0, added: [] };
    trickle(publisherEndpoint, publisher, publisherIce);
    trickle(subscriberEndpoint, subscriber, subscriberIce);

    const videoOut = publisher.addTransceiver("video", { direction: "sendonly" });
    const audioOut = publisher.addTransceiver("audio", { direction: "sendonly" });
    const offer = await publisher.createOffer();
    await publisher.setLocalDescription(offer);
    const answer = await publisherEndpoint.processOffer(stripCandidates(publisher.localDescription?.sdp ?? ""));
    expect(answer).toMatch(/^v=0\r\n/);
    expect(answer).not.toContain("a=candidate:");
    expect(answer).toMatch(/m=video [\s\S]*a=recvonly/);
    await publisher.setRemoteDescription({ type: "answer", sdp: answer });
    await publisherEndpoint.gatherCandidates();

    const video = startSyntheticMedia(videoOut, VIDEO_MARKER, 30, 3000);
    const audio = startSyntheticMedia(audioOut, AUDIO_MARKER, 50, 960);
    try {
      // The publisher's media reaches the server before anyone watches it.
      await waitFor(
        () => flowingIn.includes("VIDEO:FLOWING") && flowingIn.includes("AUDIO:FLOWING"),
        WAIT_MS,
        "MediaFlowInStateChanged FLOWING at the publisher's endpoint",
      );
      // Nobody downstream has asked for a keyframe yet (the sink connected before any video, when there was no
      // stream to ask): any PLI from now on comes from the subscriber.
      expect(video.feedback.plis).toBe(0);

      subscriber.addTransceiver("video", { direction: "recvonly" });
      subscriber.addTransceiver("audio", { direction: "recvonly" });
      const tracks: Record<string, ReturnType<typeof countMarkedPackets>> = {};
      subscriber.onTrack.subscribe((track) => {
        tracks[track.kind] = countMarkedPackets(track, track.kind === "video" ? VIDEO_MARKER : AUDIO_MARKER);
      });
      const subscriberOffer = await subscriber.createOffer();
      await subscriber.setLocalDescription(subscriberOffer);
      const subscriberAnswer = await subscriberEndpoint.processOffer(
        stripCandidates(subscriber.localDescription?.sdp ?? ""),
      );
      expect(subscriberAnswer).toMatch(/m=video [\s\S]*a=sendonly/);
      await subscriber.setRemoteDescription({ type: "answer", sdp: subscriberAnswer });
      await subscriberEndpoint.gatherCandidates();

      await waitFor(
        () => (tracks.video?.count() ?? 0) >= 20 && (tracks.audio?.count() ?? 0) >= 20,
        WAIT_MS,
        "forwarded audio and video packets",
      );
      expect(tracks.video?.other()).toBe(0);
      // The subscriber's DTLS coming up asks the publisher for a keyframe.
      await waitFor(() => video.feedback.plis >= 1, WAIT_MS, "a PLI at the publisher once the subscriber connected");
      // REMB comes once a second with the default cap (KMS_REMB_KBPS 2500), encoded exactly.
      await waitFor(() => video.feedback.rembBitrates.length >= 1, WAIT_MS, "a REMB at the publisher");
      expect(video.feedback.rembBitrates[0]).toBe(2_500_000);
      // A send limit on the subscriber lowers the REMB the publisher gets: the one way a forwarding server can honour it.
      await subscriberEndpoint.setMaxVideoSendBandwidth(300);
      expect(await subscriberEndpoint.getMaxVideoSendBandwidth()).toBe(300);
      const before = video.feedback.rembBitrates.length;
      await waitFor(
        () => video.feedback.rembBitrates.slice(before).includes(300_000),
        WAIT_MS,
        "a REMB lowered to 300 kbps",
      );
      expect(
        video.feedback.rembBitrates.slice(before).every((bitrate) => bitrate === 2_500_000 || bitrate === 300_000),
      ).toBe(true);
    } finally {
      video.stop();
      audio.stop();
    }

    expect(publisherIce.fromServer).toBeGreaterThan(0);
    expect(publisherIce.toServer).toBeGreaterThan(0);
    expect(subscriberIce.fromServer).toBeGreaterThan(0);
    expect(subscriberIce.toServer).toBeGreaterThan(0);
    // Every candidate was accepted, by the media server and by the peers.
    await Promise.all([...publisherIce.added, ...subscriberIce.added]);
    expect(gatheringDone).toBe(1);
    await waitFor(
      () => mediaStates.includes("publisher:CONNECTED") && mediaStates.includes("subscriber:CONNECTED"),
      WAIT_MS,
      "MediaStateChanged events",
    );
    expect(await subscriberEndpoint.getMediaState()).toBe("CONNECTED");

    expect(await getJson("/health")).toEqual({ status: "ok", objects: 3, pipelines: 1, sessions: 1 });
    await pipeline.release();
    expect(server.stats()).toMatchObject({ objects: 0, pipelines: 0 });
    expect(await getJson("/health")).toMatchObject({ status: "ok", objects: 0, pipelines: 0 });
  });
});
