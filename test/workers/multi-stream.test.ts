/**
 * Several streams per participant through the room object, with a fake
 * bridge at the protocol seam: a multiStream client and the original
 * client in one room; alice publishes her webcam and her screen. The
 * original client only ever hears of the webcam and keeps it when the
 * screen ends; the bridge is told which stream each command is about.
 */
import { afterEach, describe, expect, it } from "vitest";
import { attachedLink, closeAll, openClient, flushLink } from "./fake-bridge.ts";
import type { Client } from "./ws-client.ts";
import { readParticipantRow, readPendingRow, readRecordingRow } from "../../worker/do/persisted.ts";

afterEach(closeAll);

async function joinAs(room: string, user: string, multiStream?: boolean): Promise<Client> {
  const client = await openClient(`/room/${room}`);
  const joined = await client.request("joinRoom", { user, room, ...(multiStream ? { multiStream } : {}) });
  expect(joined.error).toBeUndefined();
  return client;
}

/** `client` publishes `streamId` (absent: the original request); the fake bridge answers. */
async function publish(client: Client, link: Client, streamId?: string): Promise<void> {
  const answer = client.request("publishVideo", {
    sdpOffer: `v=0 ${streamId ?? "webcam"}`,
    doLoopback: false,
    ...(streamId === undefined ? {} : { streamId }),
  });
  const command = await link.incoming("publish");
  expect(command.params).toEqual({
    user: "alice",
    ...(streamId === undefined ? {} : { stream: streamId }),
    sdpOffer: `v=0 ${streamId ?? "webcam"}`,
    loopback: false,
    dataChannels: false,
  });
  link.reply(command.id, { sdpAnswer: `v=0 answer ${streamId ?? "webcam"}` });
  expect((await answer).result).toMatchObject({ sdpAnswer: `v=0 answer ${streamId ?? "webcam"}` });
}

describe("several streams per participant (room object)", () => {
  it("the original client only ever hears of alice's webcam, and keeps it when her screen ends", async () => {
    const room = "multi-1";
    const link = await attachedLink(room, "bridge-multi-1");
    const alice = await joinAs(room, "alice", true);
    const mo = await joinAs(room, "mo", true);
    const leo = await joinAs(room, "leo");

    await publish(alice, link);
    await publish(alice, link, "screen");
    const both = await mo.waitFor(
      (f) => f.method === "participantPublished" && JSON.stringify(f.params).includes("screen"),
      "mo hears of the screen",
    );
    expect(both.params).toEqual({ id: "alice", streams: [{ id: "webcam" }, { id: "screen" }] });

    // The roster while both are live: the webcam alone to a legacy client, both streams to a multiStream one.
    const lou = await openClient(`/room/${room}`);
    const louJoined = await lou.request("joinRoom", { user: "lou", room });
    expect(louJoined.result?.value).toContainEqual({ id: "alice", streams: [{ id: "webcam" }] });
    const max = await openClient(`/room/${room}`);
    const maxJoined = await max.request("joinRoom", { user: "max", room, multiStream: true });
    expect(maxJoined.result?.value).toContainEqual({ id: "alice", streams: [{ id: "webcam" }, { id: "screen" }] });

    // mo receives the screen: the bridge is told which stream; ICE names it <user>_<stream>.
    const receiving = mo.request("receiveVideoFrom", { sender: "alice_screen", sdpOffer: "v=0 mo" });
    const subscribe = await link.incoming("subscribe");
    expect(subscribe.params).toEqual({ user: "mo", sender: "alice", stream: "screen", sdpOffer: "v=0 mo" });
    link.reply(subscribe.id, { sdpAnswer: "v=0 answer mo" });
    expect((await receiving).result).toMatchObject({ sdpAnswer: "v=0 answer mo" });
    link.notify("iceCandidate", {
      user: "mo",
      endpoint: "alice",
      stream: "screen",
      candidate: "candidate:7 1 udp 1 127.0.0.1 9 typ host",
      sdpMid: "0",
      sdpMLineIndex: 0,
    });
    const ice = await mo.waitFor((f) => f.method === "iceCandidate", "mo's server candidate");
    expect(ice.params).toMatchObject({ endpointName: "alice_screen" });

    // The screen ends: mo is told which stream, leo nothing.
    const unpublished = alice.request("unpublishVideo", { streamId: "screen" });
    const unpublish = await link.incoming("unpublish");
    expect(unpublish.params).toEqual({ user: "alice", stream: "screen" });
    expect((await unpublished).error).toBeUndefined();
    const gone = await mo.waitFor((f) => f.method === "participantUnpublished", "mo hears the screen end");
    expect(gone.params).toEqual({ name: "alice", streamId: "alice_screen" });

    // Everything the room sent leo before this candidate has arrived (one socket, in order).
    await flushLink(link, "leo", leo, "flush-leo");
    const heard = leo.frames.filter(
      (f) => f.method === "participantPublished" || f.method === "participantUnpublished",
    );
    expect(heard.map((f) => [f.method, f.params])).toEqual([
      ["participantPublished", { id: "alice", streams: [{ id: "webcam" }] }],
    ]);

    // Bad stream ids and the limit, with clear errors.
    const bad = await alice.request("publishVideo", { sdpOffer: "v=0", doLoopback: false, streamId: "my_screen" });
    expect(bad.error?.code).toBe(-32602);
    expect(bad.error?.message).toContain("streamId");
  });

  it("reads roster, pending and recording rows of the one-stream era as the webcam", () => {
    const old = {
      v: 1,
      session: "s",
      user: "bob",
      publish: "live",
      loopback: true,
      dataChannels: false,
      subscriptions: { alice: "live" },
      attributes: {},
      disconnectedAt: null,
      role: "participant",
    };
    expect(readParticipantRow(JSON.stringify(old))).toMatchObject({
      multiStream: false,
      streams: { webcam: { state: "live", loopback: true } },
      subscriptions: { alice_webcam: "live" },
    });
    const pending = { session: "s", id: 1, op: "subscribe", sender: "alice", deadline: 5 };
    expect(readPendingRow(JSON.stringify(pending))).toMatchObject({ sender: "alice_webcam" });
    const recording = { v: 1, id: "rec_x", startedAt: 1, token: "t", seq: 1, files: { bob: "001-bob-webcam.webm" } };
    expect(readRecordingRow(JSON.stringify(recording))?.files).toEqual({ bob_webcam: "001-bob-webcam.webm" });
  });
});
