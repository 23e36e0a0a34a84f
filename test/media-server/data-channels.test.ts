import type { RTCDataChannel, RTCPeerConnection } from "werift";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MediaServerHandle, startMediaServer } from "../../media-server/index.ts";
import { connectKurento, iceCandidate, type KurentoClient, type KurentoWebRtcEndpoint } from "./helpers/kurento.ts";
import { createClientPeer, waitFor } from "./helpers/werift-peer.ts";

/** Bound of every wait: it only guards against a hang. */
const WAIT_MS = 30_000;

let server: MediaServerHandle;
let client: KurentoClient;
const peers: RTCPeerConnection[] = [];

beforeAll(async () => {
  server = await startMediaServer({ port: 0, webrtc: { loopbackOnly: true }, sessionGraceMs: 500, log: () => {} });
  client = await connectKurento(server.url);
});

afterAll(async () => {
  client?.close();
  await Promise.all(peers.map((peer) => peer.close()));
  await server?.close();
});

/** Negotiates a werift peer that brings its own data channel (and a recvonly video line) with an endpoint. */
async function negotiate(
  endpoint: KurentoWebRtcEndpoint,
  label: string,
): Promise<{ peer: RTCPeerConnection; channel: RTCDataChannel }> {
  const peer = createClientPeer();
  peers.push(peer);
  endpoint.on("IceCandidateFound", (event) => {
    void peer.addIceCandidate(event.candidate as { candidate: string; sdpMid: string; sdpMLineIndex: number });
  });
  peer.onIceCandidate.subscribe((candidate) => {
    if (!candidate) return;
    const init = candidate.toJSON();
    void endpoint.addIceCandidate(
      iceCandidate({ candidate: init.candidate ?? "", sdpMid: init.sdpMid, sdpMLineIndex: init.sdpMLineIndex }),
    );
  });
  peer.addTransceiver("video", { direction: "recvonly" });
  const channel = peer.createDataChannel(label);
  await peer.setLocalDescription(await peer.createOffer());
  const answer = await endpoint.processOffer(peer.localDescription?.sdp ?? "");
  expect(answer).toContain("m=application");
  await peer.setRemoteDescription({ type: "answer", sdp: answer });
  await endpoint.gatherCandidates();
  return { peer, channel };
}

describe("data channels", () => {
  it("forwards messages along a DATA connection to the sink's channel of the same label", async () => {
    const pipeline = await client.create("MediaPipeline");
    const sender = await pipeline.create("WebRtcEndpoint", { useDataChannels: true });
    const receiver = await pipeline.create("WebRtcEndpoint", { useDataChannels: true });
    const opened: unknown[] = [];
    receiver.on("DataChannelOpened", (event) => opened.push(event.channelId));
    await sender.connect(receiver, "DATA");

    const from = await negotiate(sender, "chat");
    const to = await negotiate(receiver, "chat");
    const received: string[] = [];
    const listen = (channel: RTCDataChannel) =>
      channel.onMessage.subscribe((message) => received.push(String(message)));
    listen(to.channel);
    to.peer.onDataChannel.subscribe(listen);

    await waitFor(
      () => from.channel.readyState === "open" && to.channel.readyState === "open",
      WAIT_MS,
      "both data channels open",
    );
    await waitFor(
      () => {
        from.channel.send("hello through the media server");
        return received.includes("hello through the media server");
      },
      WAIT_MS,
      "a message forwarded to the other peer",
    );
    expect(opened.length).toBeGreaterThan(0);

    await pipeline.release();
    expect(server.stats()).toMatchObject({ objects: 0, pipelines: 0 });
  });
});
