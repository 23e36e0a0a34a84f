/**
 * werift peers standing in for browsers on the Room protocol (shared by the
 * whole-stack integration tests): real SDP offers and answers, trickle ICE
 * both ways, and bounded waits. Not a test file.
 */
import { performance } from "node:perf_hooks";
import type { MediaStreamTrack, RtpPacket } from "werift";
import { expect } from "vitest";
import type { RoomTestClient } from "../helpers/room-client.ts";
import { expectValidAnswer, testPeer, type Candidate, type TestPeer } from "../bridge/helpers/peers.ts";

export interface MediaLeg {
  readonly peer: TestPeer;
  stopCandidates(): void;
  /** How many server candidates reached the peer so far. */
  serverCandidates(): number;
  /** Every candidate the peer sent so far, once the server has answered each; rejects if any was refused. */
  candidatesAccepted(): Promise<number>;
}

/** Server candidates for `endpoint` go into `peer` as they arrive; returns a stop function and a counter. */
export function feedServerCandidates(
  client: RoomTestClient,
  endpoint: string,
  peer: TestPeer,
): { stop(): void; count(): number } {
  let stopped = false;
  let count = 0;
  const pump = async (): Promise<void> => {
    while (!stopped) {
      // Only this endpoint's: a client with several legs (a webcam and a screen) has one pump each.
      const params = await client
        .nextWhere("iceCandidate", (p) => p.endpointName === endpoint, 30_000)
        .catch(() => null);
      if (!params) return;
      if (stopped) {
        // Not ours any more: leave it for the peer that replaced this one.
        client.notifications.unshift({ method: "iceCandidate", params });
        client.wake();
        return;
      }
      await peer.addRemote({
        candidate: String(params.candidate),
        sdpMid: typeof params.sdpMid === "string" ? params.sdpMid : null,
        sdpMLineIndex: Number(params.sdpMLineIndex),
      });
      count += 1;
    }
  };
  void pump();
  return {
    stop: () => {
      stopped = true;
    },
    count: () => count,
  };
}

/**
 * The peer's candidates go to the server with onIceCandidate. Their answers
 * are kept (not swallowed): ICE can also succeed through peer-reflexive
 * candidates, so "trickle ICE works" needs the server to have accepted them.
 */
export function candidateSender(client: RoomTestClient, endpointName: string) {
  const answers: Array<Promise<unknown>> = [];
  // Candidates gathered before the offer went out wait for it, as a browser
  // client's would: the room knows no endpoint before publish/subscribe.
  let held: Candidate[] | null = [];
  const send = (c: Candidate): void => {
    const answer = client.request("onIceCandidate", { endpointName, ...c });
    answer.catch(() => undefined); // inspected by accepted(); never an unhandled rejection
    answers.push(answer);
  };
  return {
    send: (c: Candidate): void => {
      if (held) held.push(c);
      else send(c);
    },
    offerSent: (): void => {
      const waiting = held ?? [];
      held = null;
      for (const c of waiting) send(c);
    },
    accepted: async (): Promise<number> => {
      const results = await Promise.all(answers.slice());
      for (const result of results) expect(result).toHaveProperty("sessionId", expect.any(String));
      return results.length;
    },
  };
}

export async function negotiate(
  client: RoomTestClient,
  endpointName: string,
  direction: "sendonly" | "recvonly",
  request: (sdpOffer: string) => Promise<{ sdpAnswer: string }>,
): Promise<MediaLeg> {
  const sender = candidateSender(client, endpointName);
  const peer = testPeer(direction, sender.send);
  const offer = await peer.offer();
  const answered = request(offer);
  sender.offerSent();
  let sdpAnswer: string;
  try {
    ({ sdpAnswer } = await answered);
  } catch (error) {
    // A refused negotiation leaves no peer (and no UDP sockets) behind.
    await peer.close().catch(() => undefined);
    throw error;
  }
  expectValidAnswer(sdpAnswer, direction === "sendonly" ? /a=recvonly/ : /a=sendonly/);
  await peer.answer(sdpAnswer);
  const feed = feedServerCandidates(client, endpointName, peer);
  return { peer, stopCandidates: feed.stop, serverCandidates: feed.count, candidatesAccepted: sender.accepted };
}

/** Publishes `stream` (absent: the webcam, with the original request); ICE names it as the protocol does. */
export function publish(client: RoomTestClient, user: string, stream?: string): Promise<MediaLeg> {
  const endpointName = stream === undefined || stream === "webcam" ? user : `${user}_${stream}`;
  return negotiate(client, endpointName, "sendonly", (sdpOffer) =>
    client.request<{ sdpAnswer: string }>("publishVideo", {
      sdpOffer,
      doLoopback: false,
      ...(stream === undefined ? {} : { streamId: stream }),
    }),
  );
}

export function subscribe(client: RoomTestClient, sender: string, stream = "webcam"): Promise<MediaLeg> {
  const endpointName = stream === "webcam" ? sender : `${sender}_${stream}`;
  return negotiate(client, endpointName, "recvonly", (sdpOffer) =>
    client.request<{ sdpAnswer: string }>("receiveVideoFrom", { sender: `${sender}_${stream}`, sdpOffer }),
  );
}

export async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every marked video packet a subscriber received: when (ms, monotonic) and its RTP sequence number. */
export interface PacketLog {
  /** Packets received so far. */
  count(): number;
  /**
   * Over the packets received in [fromMs, toMs] (`performance.now()` times), plus the last one
   * before and the first one after (so a freeze that straddles an edge is counted whole; when none
   * came after, the gap up to `toMs`): the longest silence, and how many sequence numbers between
   * the first and the last of them never arrived.
   */
  window(fromMs: number, toMs: number): { received: number; maxGapMs: number; lost: number };
}

/**
 * Records the subscriber's video packets whose payload starts with `marker`
 * (the synthetic media's), from now on. The track exists once the answer is
 * applied; a leg whose track is not there yet is picked up when it comes.
 */
export function recordVideoPackets(leg: MediaLeg, marker: Buffer): PacketLog {
  const times: number[] = [];
  const sequences: number[] = [];
  // RTP sequence numbers wrap at 2^16: unwrap them against the last one seen.
  let lastUnwrapped: number | null = null;
  const onPacket = (packet: RtpPacket): void => {
    if (!packet.payload.subarray(0, marker.length).equals(marker)) return;
    const raw = packet.header.sequenceNumber;
    let unwrapped = raw;
    if (lastUnwrapped !== null) {
      const base = lastUnwrapped - (lastUnwrapped & 0xffff);
      unwrapped = base + raw;
      if (unwrapped < lastUnwrapped - 0x8000) unwrapped += 0x10000;
      else if (unwrapped > lastUnwrapped + 0x8000) unwrapped -= 0x10000;
    }
    lastUnwrapped = Math.max(lastUnwrapped ?? unwrapped, unwrapped);
    times.push(performance.now());
    sequences.push(unwrapped);
  };
  const listen = (track: MediaStreamTrack): void => {
    track.onReceiveRtp.subscribe(onPacket);
  };
  const existing = leg.peer.video.receiver.tracks.find((track) => track.kind === "video");
  if (existing) listen(existing);
  else {
    const { unSubscribe } = leg.peer.peer.onTrack.subscribe((track) => {
      if (track.kind !== "video") return;
      unSubscribe();
      listen(track);
    });
  }
  return {
    count: () => times.length,
    window(fromMs, toMs) {
      let first = times.findIndex((t) => t >= fromMs);
      if (first < 0) first = times.length;
      let end = times.findIndex((t) => t > toMs);
      if (end < 0) end = times.length;
      const start = Math.max(0, first - 1);
      const last = Math.min(times.length, end + 1);
      const inWindow = times.slice(start, last);
      let maxGapMs = 0;
      for (let i = 1; i < inWindow.length; i++) maxGapMs = Math.max(maxGapMs, inWindow[i]! - inWindow[i - 1]!);
      const lastTime = inWindow.at(-1);
      if (end === times.length) maxGapMs = Math.max(maxGapMs, toMs - (lastTime ?? fromMs));
      const seen = new Set(sequences.slice(start, last));
      const lost = seen.size === 0 ? 0 : Math.max(...seen) - Math.min(...seen) + 1 - seen.size;
      return { received: end - first, maxGapMs, lost };
    },
  };
}
