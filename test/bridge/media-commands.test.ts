/**
 * Claims about the media commands, proven at the bridge level against real
 * processes: the worker stand-in sends the commands over a room link to a
 * real bridge, which drives the embedded media server (behind a KmsRelay that
 * records what the media server received and answered).
 */
import { describe, expect, it, onTestFinished } from "vitest";
import { RoomCode } from "../../protocol/errors.ts";
import { RpcRequestError } from "../../protocol/rpc-peer.ts";
import { publish, startStack, WAIT_MS } from "./helpers/bridge-stack.ts";
import { waitUntil } from "./helpers/fake-worker.ts";
import { publishOverLink } from "./helpers/link-media.ts";
import { expectValidAnswer, type TestPeer, testPeer } from "./helpers/peers.ts";

/** The `m=` lines of an SDP, e.g. `m=application 9 UDP/DTLS/SCTP webrtc-datachannel`. */
function mediaLines(sdp: string): string[] {
  return sdp.split("\r\n").filter((line) => line.startsWith("m="));
}

describe("media commands through the bridge to the media server", () => {
  it("publish and releaseUser for the same user at the same time leave no media objects, and the publish answers with a result or a clear error", async () => {
    const stack = await startStack();
    const { worker, relay } = stack;
    const media = stack.media!;
    const peers: TestPeer[] = [];
    onTestFinished(() => Promise.all(peers.map((peer) => peer.close())).then(() => undefined));
    const control = await worker.registeredControl(WAIT_MS);
    expect(await control.request("attach", { room: "race", user: "ann" })).toEqual({});
    const room = await worker.roomLink("race", WAIT_MS);

    const race = async (user: string): Promise<"published" | "refused"> => {
      const peer = testPeer("sendonly", () => undefined);
      peers.push(peer);
      const sdpOffer = await peer.offer();
      // Both frames leave back to back, before any answer: the releaseUser reaches the bridge while the publish is
      // still on its way through the media server.
      const published = room.request<{ sdpAnswer: string }>("publish", {
        user,
        sdpOffer,
        loopback: false,
        dataChannels: false,
      });
      const released = room.request("releaseUser", { user });
      const [publishOutcome, releaseOutcome] = await Promise.allSettled([published, released]);
      expect(releaseOutcome).toEqual({ status: "fulfilled", value: {} });
      // Nothing is left, on the media server or in the bridge's books.
      await waitUntil(
        () => media.stats().objects === 0,
        WAIT_MS,
        () => `no media objects (${media.stats().objects})`,
      );
      expect(media.stats()).toMatchObject({ objects: 0, pipelines: 0 });
      expect(stack.bridge.stats().rooms.find((entry) => entry.room === "race")).toMatchObject({
        publishers: 0,
        subscriptions: 0,
        held: [],
      });
      expect(await room.request("sync", { users: [user] })).toEqual({ held: [] });
      if (publishOutcome.status === "fulfilled") {
        expectValidAnswer(publishOutcome.value.sdpAnswer, /a=recvonly/);
        return "published";
      }
      // A refusal must be a media error with a message, never a timeout or an internal error.
      const error = publishOutcome.reason as unknown;
      expect(error).toBeInstanceOf(RpcRequestError);
      expect([RoomCode.MEDIA_GENERIC, RoomCode.MEDIA_ENDPOINT]).toContain((error as RpcRequestError).code);
      expect((error as RpcRequestError).message).toMatch(/\w/);
      expect((error as RpcRequestError).message).not.toMatch(/no answer|within \d+ ms|internal/i);
      return "refused";
    };

    // Each publish did reach the media server (an endpoint was created for it): these were races, not releases of
    // nothing.
    const endpoints = (): number => relay.creations("WebRtcEndpoint").length;
    const outcomes: string[] = [];
    // A first publish, raced by its release.
    outcomes.push(await race("ann"));
    expect(endpoints()).toBe(1);
    // A publish that replaces a live one, raced by the release.
    await publish(stack, room, "bea");
    expect(media.stats().objects).toBe(3);
    outcomes.push(await race("bea"));
    expect(endpoints()).toBe(3);
    // Several users at once, each raced by their own release.
    outcomes.push(...(await Promise.all(["cal", "dee", "eli"].map((user) => race(user)))));
    expect(endpoints()).toBe(6);
    expect(outcomes).toHaveLength(5);
    const text = await (await fetch(`${stack.bridge.httpUrl}/metrics`)).text();
    expect(text).toContain('bridge_command_duration_seconds_count{op="releaseUser"} 5\n');
    expect(text).not.toMatch(/bridge_command_errors_total\{op="releaseUser"/);
  });

  it("passes dataChannels: true in a publish to the media server, which makes the endpoint with data channels", async () => {
    const stack = await startStack();
    const { worker, relay } = stack;
    const control = await worker.registeredControl(WAIT_MS);
    expect(await control.request("attach", { room: "chat", user: "dana" })).toEqual({});
    const room = await worker.roomLink("chat", WAIT_MS);

    // dana offers a data channel and publishes with dataChannels: true; eve publishes without.
    const dana = await publishOverLink(room, "dana", { dataChannels: true, peer: { dataChannel: "chat" } });
    stack.legs.push(dana);
    const eve = await publishOverLink(room, "eve", { dataChannels: false });
    stack.legs.push(eve);

    // What the media server received: the flag became useDataChannels on dana's endpoint only.
    const made = relay.creations("WebRtcEndpoint");
    expect(made.map((creation) => creation.constructorParams)).toEqual([
      { mediaPipeline: expect.stringMatching(/_kurento\.MediaPipeline$/), useDataChannels: true },
      { mediaPipeline: expect.stringMatching(/_kurento\.MediaPipeline$/) },
    ]);
    const [danaEndpoint, eveEndpoint] = made.map((creation) => String(creation.reply?.result?.value));
    expect(danaEndpoint).toMatch(/_kurento\.WebRtcEndpoint$/);
    expect(eveEndpoint).toMatch(/_kurento\.WebRtcEndpoint$/);

    // And its answers: an accepted application section for dana's channel.
    const danaApplication = mediaLines(dana.sdpAnswer).filter((line) => line.startsWith("m=application "));
    expect(danaApplication).toHaveLength(1);
    expect(danaApplication[0]).toMatch(/^m=application [1-9]\d* UDP\/DTLS\/SCTP webrtc-datachannel$/);

    // End to end: dana's channel opens through the link's ICE.
    await waitUntil(
      async () => {
        await dana.feedServerCandidates();
        return dana.peer.channel?.readyState === "open";
      },
      WAIT_MS,
      () => `dana's data channel open (${dana.peer.channel?.readyState}, peer ${dana.peer.peer.connectionState})`,
    );
    // What the media server made of it: dana's endpoint has data channels, eve's has none.
    const onDana = await relay.invoke(danaEndpoint!, "createDataChannel", { label: "from-the-test" });
    expect(onDana.error).toBeUndefined();
    const onEve = await relay.invoke(eveEndpoint!, "createDataChannel", { label: "from-the-test" });
    expect(onEve.error?.message).toMatch(/created without useDataChannels/);

    expect(await dana.candidatesAccepted()).toBeGreaterThan(0);
    expect(await eve.candidatesAccepted()).toBeGreaterThan(0);
    expect(await room.request("releaseRoom", {})).toEqual({});
    expect(stack.media!.stats().objects).toBe(0);
  });
});
