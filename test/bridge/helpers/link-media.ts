/**
 * Media negotiated over a room link, as the worker relays it: a werift peer's
 * offer goes out as `publish` / `subscribe`, its candidates as
 * `addIceCandidate`, and the bridge's `iceCandidate` notifications go into the
 * peer. Nothing is swallowed: every candidate answer is kept, so a test can
 * require the bridge to have accepted each one (ICE can also succeed through
 * peer-reflexive candidates, which would hide a broken trickle path), and the
 * media server can be asked which candidate pair it selected.
 */
import { expect } from "vitest";
import { type Link, waitUntil } from "./fake-worker.ts";
import type { KmsRelay } from "./kms-relay.ts";
import { type Candidate, expectValidAnswer, type TestPeer, type TestPeerOptions, testPeer } from "./peers.ts";

export interface LinkLeg {
  readonly peer: TestPeer;
  readonly user: string;
  /** The endpoint name on the link: the user's own for a publisher, the sender's for a subscription. */
  readonly endpoint: string;
  readonly sdpAnswer: string;
  /** Waits for the bridge's answer to every candidate the peer sent; each must be `{}` (no error). Returns how many. */
  candidatesAccepted(): Promise<number>;
  /** Feeds the `iceCandidate` notifications received so far for this endpoint into the peer; returns how many in all. */
  feedServerCandidates(): Promise<number>;
  /** The server candidates fed into the peer so far. */
  readonly serverCandidates: string[];
}

export interface NegotiateOptions {
  readonly user: string;
  readonly endpoint: string;
  readonly direction: "sendonly" | "recvonly" | "sendrecv";
  readonly request: (sdpOffer: string) => Promise<{ sdpAnswer: string }>;
  readonly peer?: TestPeerOptions;
}

/**
 * Negotiates one peer over `link`. Candidates the peer gathers before its
 * offer has gone out wait for it, as a browser client's do (the room knows no
 * endpoint before publish/subscribe); then each goes out as `addIceCandidate`
 * and its answer is kept.
 */
export async function negotiateOverLink(link: Link, options: NegotiateOptions): Promise<LinkLeg> {
  const { user, endpoint } = options;
  const answers: Array<Promise<unknown>> = [];
  let held: Candidate[] | null = [];
  const send = (candidate: Candidate): void => {
    const answer = link.request("addIceCandidate", { user, endpoint, ...candidate });
    answer.catch(() => undefined); // inspected by candidatesAccepted(); never an unhandled rejection
    answers.push(answer);
  };
  const peer = testPeer(
    options.direction,
    (candidate) => {
      if (held) held.push(candidate);
      else send(candidate);
    },
    options.peer,
  );
  const offer = await peer.offer();
  const answered = options.request(offer);
  const waiting = held;
  held = null;
  for (const candidate of waiting) send(candidate);
  const { sdpAnswer } = await answered;
  await peer.answer(sdpAnswer);

  const serverCandidates: string[] = [];
  let next = 0;
  return {
    peer,
    user,
    endpoint,
    sdpAnswer,
    serverCandidates,
    async candidatesAccepted() {
      const results = await Promise.all(answers.slice());
      for (const result of results) expect(result).toEqual({});
      return results.length;
    },
    async feedServerCandidates() {
      const list = link.received;
      for (; next < list.length; next++) {
        const entry = list[next]!;
        if (entry.method !== "iceCandidate" || entry.params.user !== user || entry.params.endpoint !== endpoint)
          continue;
        const candidate = String(entry.params.candidate);
        serverCandidates.push(candidate);
        await peer.addRemote({
          candidate,
          sdpMid: (entry.params.sdpMid as string | null) ?? null,
          sdpMLineIndex: Number(entry.params.sdpMLineIndex),
        });
      }
      return serverCandidates.length;
    },
  };
}

/** Publishes `user` over the room link (no loopback unless `sendrecv`); the answer must be a valid receiving one. */
export async function publishOverLink(
  link: Link,
  user: string,
  options: { direction?: "sendonly" | "sendrecv"; dataChannels?: boolean; peer?: TestPeerOptions } = {},
): Promise<LinkLeg> {
  const direction = options.direction ?? "sendonly";
  const leg = await negotiateOverLink(link, {
    user,
    endpoint: user,
    direction,
    ...(options.peer ? { peer: options.peer } : {}),
    request: (sdpOffer) =>
      link.request<{ sdpAnswer: string }>("publish", {
        user,
        sdpOffer,
        loopback: direction === "sendrecv",
        dataChannels: options.dataChannels ?? false,
      }),
  });
  expectValidAnswer(leg.sdpAnswer, direction === "sendonly" ? /a=recvonly/ : /a=sendrecv/);
  return leg;
}

/** Subscribes `user` to `sender` over the room link. */
export async function subscribeOverLink(link: Link, user: string, sender: string): Promise<LinkLeg> {
  const leg = await negotiateOverLink(link, {
    user,
    endpoint: sender,
    direction: "recvonly",
    request: (sdpOffer) => link.request<{ sdpAnswer: string }>("subscribe", { user, sender, sdpOffer }),
  });
  expectValidAnswer(leg.sdpAnswer, /a=sendonly/);
  return leg;
}

/** The parts of an ICE candidate line that name the transport address: `udp 127.0.0.1 40000 host`. */
export function candidateAddress(line: string): string {
  const fields = line
    .replace(/^a=/, "")
    .replace(/^candidate:/, "")
    .trim()
    .split(/\s+/);
  // foundation component protocol priority address port "typ" type …
  const typ = fields.indexOf("typ");
  return [fields[2]?.toLowerCase(), fields[4], fields[5], typ > 0 ? fields[typ + 1] : "?"].join(" ");
}

/**
 * Trickle ICE worked both ways for `leg`, as the media server saw it:
 * - the bridge answered every candidate the peer sent with `{}`, and each
 *   one reached the media server as `addIceCandidate` on one endpoint and
 *   was accepted there (a result, no error);
 * - every candidate the media server found for that endpoint reached the peer;
 * - the pair the media server selected joins a candidate the peer trickled
 *   (a host candidate, not one learnt from a connectivity check, which is how
 *   ICE would still connect with the trickle path broken) and one of its own
 *   that the peer was given.
 */
export async function expectTrickledBothWays(leg: LinkLeg, relay: KmsRelay): Promise<void> {
  const what = `${leg.user}/${leg.endpoint}`;
  const sent = await leg.candidatesAccepted();
  expect(sent, `${what}: candidates sent`).toBeGreaterThan(0);
  expect(sent, `${what}: every gathered candidate sent`).toBe(leg.peer.candidates.length);

  const mine = new Set(leg.peer.candidates.map((candidate) => candidate.candidate));
  const added = relay
    .invocations("addIceCandidate")
    .filter((call) => mine.has(String((call.operationParams.candidate as { candidate?: string }).candidate)));
  expect(added.map((call) => (call.operationParams.candidate as { candidate: string }).candidate).sort()).toEqual(
    [...mine].sort(),
  );
  const endpoints = [...new Set(added.map((call) => call.object))];
  expect(endpoints, `${what}: one endpoint got the candidates`).toHaveLength(1);
  const endpoint = endpoints[0]!;
  expect(endpoint).toMatch(/_kurento\.WebRtcEndpoint$/);
  for (const call of added) {
    expect(call.reply?.error, `${what}: the media server refused a candidate`).toBeUndefined();
    expect(call.reply?.result).toEqual({ sessionId: expect.any(String) });
  }

  const found = (): string[] =>
    relay
      .events("IceCandidateFound", endpoint)
      .map((data) => String((data.candidate as { candidate?: unknown } | undefined)?.candidate));
  expect(found().length, `${what}: candidates the media server found`).toBeGreaterThan(0);
  await waitUntil(
    async () => {
      await leg.feedServerCandidates();
      return found().every((candidate) => leg.serverCandidates.includes(candidate));
    },
    30_000,
    () =>
      `${what}: the media server's ${found().length} candidates at the peer (${leg.serverCandidates.length} so far)`,
  );

  const pairs = await relay.invoke(endpoint, "getICECandidatePairs");
  expect(pairs.error).toBeUndefined();
  const selected = pairs.result?.value as Array<{ localCandidate: string; remoteCandidate: string }>;
  expect(selected, `${what}: the media server's selected pair`).toHaveLength(1);
  const peerAddresses = new Set([...mine].map(candidateAddress));
  const serverAddresses = new Set(leg.serverCandidates.map(candidateAddress));
  expect(candidateAddress(selected[0]!.remoteCandidate)).toMatch(/ host$/);
  expect(peerAddresses.has(candidateAddress(selected[0]!.remoteCandidate))).toBe(true);
  expect(serverAddresses.has(candidateAddress(selected[0]!.localCandidate))).toBe(true);
}
