/**
 * werift peers standing in for browsers on the Room protocol (shared by the
 * whole-stack integration tests): real SDP offers and answers, trickle ICE
 * both ways, and bounded waits. Not a test file.
 */
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
      const params = await client.next("iceCandidate", 30_000).catch(() => null);
      if (!params) return;
      if (stopped) {
        // Not ours any more: leave it for the peer that replaced this one.
        client.notifications.unshift({ method: "iceCandidate", params });
        client.wake();
        return;
      }
      if (params.endpointName !== endpoint) continue;
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
  const { sdpAnswer } = await answered;
  expectValidAnswer(sdpAnswer, direction === "sendonly" ? /a=recvonly/ : /a=sendonly/);
  await peer.answer(sdpAnswer);
  const feed = feedServerCandidates(client, endpointName, peer);
  return { peer, stopCandidates: feed.stop, serverCandidates: feed.count, candidatesAccepted: sender.accepted };
}

export function publish(client: RoomTestClient, user: string): Promise<MediaLeg> {
  return negotiate(client, user, "sendonly", (sdpOffer) =>
    client.request<{ sdpAnswer: string }>("publishVideo", { sdpOffer, doLoopback: false }),
  );
}

export function subscribe(client: RoomTestClient, sender: string): Promise<MediaLeg> {
  return negotiate(client, sender, "recvonly", (sdpOffer) =>
    client.request<{ sdpAnswer: string }>("receiveVideoFrom", { sender: `${sender}_webcam`, sdpOffer }),
  );
}

export async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
