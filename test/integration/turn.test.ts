/**
 * TURN with a real coturn (README "ICE servers and TURN"): the credentials a
 * user gets from `joinRoom` (TURN_URLS / TURN_SECRET on a real `wrangler
 * dev`) let a werift peer forced to relay (`iceTransportPolicy: "relay"`)
 * allocate on coturn and carry data through it; credentials made with
 * another secret, or expired ones, are refused by coturn (401) and the
 * peer gathers nothing.
 */
import { RTCPeerConnection } from "werift";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type IceServer, turnCredentials } from "../../protocol/ice-servers.ts";
import { startTurn, type TurnHandle } from "../../scripts/turn.ts";
import { createClientPeer, waitFor } from "../media-server/helpers/werift-peer.ts";
import { WorkerUnderTest } from "./support.ts";

const WAIT_MS = 30_000;

let turn: TurnHandle;
let worker: WorkerUnderTest;
const peers: RTCPeerConnection[] = [];

beforeAll(async () => {
  turn = await startTurn();
  worker = await WorkerUnderTest.start({ vars: { TURN_URLS: turn.url, TURN_SECRET: turn.secret } });
});

afterAll(async () => {
  await Promise.all(peers.map((peer) => peer.close()));
  await worker?.stop();
  await turn?.stop();
});

/** What `joinRoom` hands `user` (the worker computes the credentials). */
async function joinedIceServers(room: string, user: string): Promise<IceServer[]> {
  const client = await worker.open(`/room/${room}`);
  const result = await client.request<{ iceServers?: IceServer[] }>("joinRoom", { user, room });
  expect(result.iceServers).toBeDefined();
  return result.iceServers ?? [];
}

/** A peer that may only use relay candidates (what a browser does with `iceTransportPolicy: "relay"`). */
function relayOnlyPeer(iceServers: IceServer[]): RTCPeerConnection {
  const peer = new RTCPeerConnection({ iceServers, iceTransportPolicy: "relay", iceUseIpv6: false });
  peers.push(peer);
  return peer;
}

/** Gathers with a data channel's offer; resolves with every candidate once gathering is complete. */
async function gather(peer: RTCPeerConnection): Promise<string[]> {
  const candidates: string[] = [];
  peer.onIceCandidate.subscribe((candidate) => {
    if (candidate) candidates.push(candidate.toJSON().candidate ?? "");
  });
  const complete = new Promise<void>((done) => {
    peer.iceGatheringStateChange.subscribe((state) => {
      if (state === "complete") done();
    });
  });
  if (!peer.sctpTransport) peer.createDataChannel("probe");
  await peer.setLocalDescription(await peer.createOffer());
  await complete;
  return candidates;
}

/** `candidate:… <ip> <port> typ <type> …` → its parts. */
function parseCandidate(line: string): { ip: string; port: number; type: string } {
  const fields = line.replace(/^candidate:/, "").split(/\s+/);
  return { ip: fields[4] ?? "", port: Number(fields[5]), type: fields[7] ?? "" };
}

/** Waits until coturn's log matches `pattern` (it logs each request it processed). */
async function turnLogged(pattern: RegExp): Promise<void> {
  await waitFor(() => pattern.test(turn.log()), WAIT_MS, `coturn to log ${pattern}`);
}

const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("TURN with coturn (use-auth-secret)", () => {
  it("joinRoom hands out TURN credentials coturn accepts: a relay-only peer gathers relay candidates on 127.0.0.1", async () => {
    const iceServers = await joinedIceServers("turn-gather", "ann");
    const turnServer = iceServers.find((server) => [server.urls].flat().includes(turn.url));
    expect(turnServer?.username).toMatch(/^\d+:ann$/);

    const candidates = (await gather(relayOnlyPeer(iceServers))).map(parseCandidate);
    expect(candidates.length).toBeGreaterThan(0);
    for (const candidate of candidates) {
      expect(candidate.type).toBe("relay");
      expect(candidate.ip).toBe("127.0.0.1");
      // An address coturn allocated, not its listening port.
      expect(candidate.port).not.toBe(turn.port);
    }
    await turnLogged(
      new RegExp(`user <${literal(turnServer?.username ?? "")}>: incoming packet ALLOCATE processed, success`),
    );
  });

  it("data goes through the relay: a relay-only peer and a host-only peer exchange messages over the relayed pair", async () => {
    const iceServers = await joinedIceServers("turn-data", "bob");
    const relayed = relayOnlyPeer(iceServers);
    const direct = createClientPeer();
    peers.push(direct);
    relayed.onIceCandidate.subscribe((candidate) => {
      if (candidate) void direct.addIceCandidate(candidate);
    });
    direct.onIceCandidate.subscribe((candidate) => {
      if (candidate) void relayed.addIceCandidate(candidate);
    });
    const channel = relayed.createDataChannel("through-turn");
    const received = new Promise<string>((done) => {
      direct.onDataChannel.subscribe((incoming) => {
        incoming.onMessage.subscribe((message) => done(String(message)));
      });
    });
    const opened = new Promise<void>((done) => channel.stateChanged.subscribe((state) => state === "open" && done()));
    await relayed.setLocalDescription(await relayed.createOffer());
    await direct.setRemoteDescription(relayed.localDescription ?? { type: "offer", sdp: "" });
    await direct.setLocalDescription(await direct.createAnswer());
    await relayed.setRemoteDescription(direct.localDescription ?? { type: "answer", sdp: "" });
    await opened;
    channel.send("relayed hello");
    expect(await received).toBe("relayed hello");

    const pair = relayed.iceTransports[0]?.getSelectedCandidatePair();
    expect(parseCandidate(pair?.local.candidate ?? "").type).toBe("relay");
    expect(parseCandidate(pair?.remote.candidate ?? "").type).toBe("host");
    // coturn set up the permission and carried the traffic.
    await turnLogged(/(CREATE_PERMISSION|CHANNEL_BIND) processed, success/);
  });

  it("credentials signed with another secret are refused (401): no relay candidate", async () => {
    const { username, credential } = await turnCredentials("not-the-turn-secret", "carol", 3600);
    const candidates = await gather(relayOnlyPeer([{ urls: turn.url, username, credential }]));
    expect(candidates).toEqual([]);
    await turnLogged(new RegExp(`user <${literal(username)}>: incoming packet message processed, error 401`));
  });

  it("expired credentials are refused (401): no relay candidate", async () => {
    const { username, credential } = await turnCredentials(turn.secret, "dave", -60);
    const candidates = await gather(relayOnlyPeer([{ urls: turn.url, username, credential }]));
    expect(candidates).toEqual([]);
    await turnLogged(new RegExp(`user <${literal(username)}>: incoming packet message processed, error 401`));
  });
});
