/**
 * STUN and TURN on the embedded media server's WebRtcEndpoint, driven by the
 * real kurento-client as KMS would be (README "ICE servers and TURN"):
 * `setStunServerAddress` / `setStunServerPort` / `setTurnUrl` take KMS's
 * formats and refuse others with a Kurento error; a TURN URL in KMS's format
 * with TURN REST API credentials (user "<expiry>:<name>", as the bridge makes
 * them) makes the endpoint allocate on a real coturn and offer the relay
 * candidate. (Which pair ICE then picks cannot be forced here: every
 * candidate is on 127.0.0.1, and a direct pair wins.)
 */
import type { RTCPeerConnection } from "werift";
import dgram from "node:dgram";
import dns from "node:dns";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MediaServerHandle, startMediaServer } from "../../media-server/index.ts";
import { turnCredentials } from "../../protocol/ice-servers.ts";
import { startTurn, type TurnHandle } from "../../scripts/turn.ts";
import { connectKurento, iceCandidate, type KurentoClient, type KurentoWebRtcEndpoint } from "./helpers/kurento.ts";
import { createClientPeer, stripCandidates, waitFor } from "./helpers/werift-peer.ts";

const WAIT_MS = 30_000;
/** The real send and lookup, for the wrappers that record destinations. */
const original = dgram.Socket.prototype.send;
const originalLookup = dns.promises.lookup;

/** kurento-client's STUN/TURN accessors of a WebRtcEndpoint (KMS's API). */
type Callback = (error?: { code: number; message: string }) => void;
type IceEndpoint = KurentoWebRtcEndpoint & {
  setStunServerAddress(address: string, callback?: Callback): Promise<void>;
  getStunServerAddress(): Promise<string>;
  setStunServerPort(port: number, callback?: Callback): Promise<void>;
  getStunServerPort(): Promise<number>;
  setTurnUrl(url: string, callback?: Callback): Promise<void>;
  getTurnUrl(): Promise<string>;
};

let server: MediaServerHandle;
let turn: TurnHandle;
let client: KurentoClient;
const peers: RTCPeerConnection[] = [];

beforeAll(async () => {
  turn = await startTurn();
  server = await startMediaServer({ port: 0, webrtc: { loopbackOnly: true }, sessionGraceMs: 500, log: () => {} });
  client = await connectKurento(server.url);
});

afterAll(async () => {
  await Promise.all(peers.map((peer) => peer.close()));
  client?.close();
  await server?.close();
  await turn?.stop();
});

async function endpoint(): Promise<IceEndpoint> {
  const pipeline = await client.create("MediaPipeline");
  return (await pipeline.create("WebRtcEndpoint")) as IceEndpoint;
}

const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The error a setter's callback gets. (Without a callback, kurento-client's
 * setters only print a server error and resolve anyway.)
 */
function refusal(what: string, call: (callback: Callback) => unknown): Promise<{ code: number; message: string }> {
  return new Promise((done, fail) => {
    call((error) =>
      error ? done({ code: error.code, message: error.message }) : fail(new Error(`${what}: the call succeeded`)),
    );
  });
}

describe("STUN and TURN settings of the embedded media server's WebRtcEndpoint", () => {
  it("takes KMS's formats and reads them back; '' clears; the STUN port defaults to 3478", async () => {
    const webrtc = await endpoint();
    expect(await webrtc.getStunServerAddress()).toBe("");
    expect(await webrtc.getStunServerPort()).toBe(3478);
    expect(await webrtc.getTurnUrl()).toBe("");
    await webrtc.setStunServerAddress("127.0.0.1");
    await webrtc.setStunServerPort(turn.port);
    // A TURN REST API user name has a ':' of its own: KMS's user part is greedy, so is ours.
    const url = `1796000000:bridge-1:c2VjcmV0+/=@127.0.0.1:${turn.port}?transport=udp`;
    await webrtc.setTurnUrl(url);
    expect(await webrtc.getStunServerAddress()).toBe("127.0.0.1");
    expect(await webrtc.getStunServerPort()).toBe(turn.port);
    expect(await webrtc.getTurnUrl()).toBe(url);
    await webrtc.setStunServerAddress("::1");
    expect(await webrtc.getStunServerAddress()).toBe("::1");
    await webrtc.setTurnUrl("");
    expect(await webrtc.getTurnUrl()).toBe("");
  });

  it("refuses what KMS cannot use with a Kurento error naming the setting (-32602), keeping the old value", async () => {
    const webrtc = await endpoint();
    await webrtc.setTurnUrl("user:pass@127.0.0.1:3478");
    const bad: Array<[string, (callback: Callback) => unknown, RegExp]> = [
      ["a domain name", (cb) => webrtc.setStunServerAddress("stun.example.com", cb), /stunServerAddress.*IP address/],
      ["a port out of range", (cb) => webrtc.setStunServerPort(70_000, cb), /stunServerPort/],
      [
        "a turn: URI (not KMS's format)",
        (cb) => webrtc.setTurnUrl(`turn:127.0.0.1:${turn.port}`, cb),
        /turnUrl.*user:password@/,
      ],
      ["a TURN host name", (cb) => webrtc.setTurnUrl("user:pass@turn.example.com:3478", cb), /turnUrl/],
      ["no port", (cb) => webrtc.setTurnUrl("user:pass@127.0.0.1", cb), /turnUrl/],
      ["an unknown transport", (cb) => webrtc.setTurnUrl("user:pass@127.0.0.1:3478?transport=sctp", cb), /turnUrl/],
    ];
    for (const [what, call, message] of bad) {
      const error = await refusal(what, call);
      expect(error.code, what).toBe(-32602);
      expect(error.message, what).toMatch(message);
    }
    expect(await webrtc.getTurnUrl()).toBe("user:pass@127.0.0.1:3478");
    expect(await webrtc.getStunServerAddress()).toBe("");
  });

  it("with a turnUrl it allocates on coturn, offers the relay candidate, and its media connects", async () => {
    const { username, credential } = await turnCredentials(turn.secret, "media-server", 3600);
    const webrtc = await endpoint();
    await webrtc.setTurnUrl(`${username}:${credential}@127.0.0.1:${turn.port}?transport=udp`);

    const found: string[] = [];
    const added: Array<Promise<unknown>> = [];
    const peer = createClientPeer();
    peers.push(peer);
    // The peer gets the server's relay candidate only (ICE still finds the direct pair through peer-reflexive checks).
    webrtc.on("IceCandidateFound", (event) => {
      const candidate = event.candidate as { candidate: string; sdpMid: string; sdpMLineIndex: number };
      found.push(candidate.candidate);
      if (/ typ relay /.test(candidate.candidate)) added.push(peer.addIceCandidate(candidate));
    });
    peer.onIceCandidate.subscribe((candidate) => {
      if (!candidate) return;
      const init = candidate.toJSON();
      added.push(
        webrtc.addIceCandidate(
          iceCandidate({ candidate: init.candidate ?? "", sdpMid: init.sdpMid, sdpMLineIndex: init.sdpMLineIndex }),
        ),
      );
    });
    const states: string[] = [];
    webrtc.on("MediaStateChanged", (event) => states.push(String(event.newState)));

    peer.addTransceiver("video", { direction: "sendonly" });
    await peer.setLocalDescription(await peer.createOffer());
    const answer = await webrtc.processOffer(stripCandidates(peer.localDescription?.sdp ?? ""));
    await peer.setRemoteDescription({ type: "answer", sdp: answer });
    await webrtc.gatherCandidates();

    await waitFor(() => found.some((c) => / typ relay /.test(c)), WAIT_MS, "a relay candidate from the endpoint");
    const relay = found.find((c) => / typ relay /.test(c)) ?? "";
    expect(relay).toMatch(/ 127\.0\.0\.1 \d+ typ relay /);
    expect(relay).not.toContain(` ${turn.port} typ relay`);
    expect(turn.log()).toMatch(new RegExp(`user <${literal(username)}>: incoming packet ALLOCATE processed, success`));

    await waitFor(() => states.includes("CONNECTED"), WAIT_MS, "the endpoint's media to connect");
    await Promise.all(added);
  });

  it("asks no STUN server unless it has one (werift's fallback to stun.l.google.com is off); with one, it asks that one", async () => {
    // Every UDP datagram any socket of this process sends, with its destination (the media server runs in-process).
    const sent: string[] = [];
    dgram.Socket.prototype.send = function (this: dgram.Socket, ...args: unknown[]) {
      if (typeof args[2] === "string") sent.push(`${args[2]}:${String(args[1])}`);
      return original.apply(this, args as never);
    } as typeof original;
    // …and every host name werift resolves before a STUN request (it resolves, then sends to the address).
    const looked: string[] = [];
    dns.promises.lookup = ((hostname: string, ...rest: unknown[]) => {
      looked.push(hostname);
      return (originalLookup as (...args: unknown[]) => unknown)(hostname, ...rest);
    }) as typeof dns.promises.lookup;
    try {
      /** The host names looked up while the endpoint negotiates (the werift test peer, in-process too, has gathered before). */
      const negotiate = async (webrtc: IceEndpoint): Promise<string[]> => {
        const peer = createClientPeer();
        peers.push(peer);
        peer.addTransceiver("video", { direction: "sendonly" });
        await peer.setLocalDescription(await peer.createOffer());
        const before = looked.length;
        await webrtc.processOffer(stripCandidates(peer.localDescription?.sdp ?? ""));
        await webrtc.gatherCandidates();
        // The endpoint's gathering is over when processOffer answers (werift's setLocalDescription waits for it).
        return looked.slice(before);
      };
      expect(await negotiate(await endpoint())).toEqual([]);

      const withStun = await endpoint();
      await withStun.setStunServerAddress("127.0.0.1");
      await withStun.setStunServerPort(turn.port);
      expect(await negotiate(withStun)).toEqual([]);
      await waitFor(() => sent.includes(`127.0.0.1:${turn.port}`), WAIT_MS, "a STUN request to the configured server");
    } finally {
      dgram.Socket.prototype.send = original;
      dns.promises.lookup = originalLookup;
    }
  });
});
