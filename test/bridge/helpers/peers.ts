/**
 * werift client peers for the bridge tests (127.0.0.1 only, no STUN), built
 * on the media-server tests' helpers, plus a loose SDP answer check.
 */
import type { MediaStreamTrack, RTCDataChannel, RTCPeerConnection, RTCRtpTransceiver } from "werift";
import {
  countMarkedPackets,
  createClientPeer,
  startSyntheticMedia,
  stripCandidates,
} from "../../media-server/helpers/werift-peer.ts";

export { countMarkedPackets, createClientPeer, startSyntheticMedia, stripCandidates };

export interface Candidate {
  candidate: string;
  sdpMid: string | null;
  sdpMLineIndex: number;
}

export interface TestPeer {
  readonly peer: RTCPeerConnection;
  readonly video: RTCRtpTransceiver;
  readonly audio: RTCRtpTransceiver;
  /** The data channel the peer opened before its offer (`options.dataChannel`), if any. */
  readonly channel: RTCDataChannel | undefined;
  /** Local candidates gathered so far (sent through `onCandidate` as they come). */
  readonly candidates: Candidate[];
  /** Packets received on the video track whose payload starts with `marker` (counting starts now). */
  videoPackets(marker: Buffer): () => number;
  /** The offer, without candidates (they trickle). */
  offer(): Promise<string>;
  answer(sdp: string): Promise<void>;
  addRemote(candidate: Candidate): Promise<void>;
  close(): Promise<void>;
}

export interface TestPeerOptions {
  /** Opens a data channel with this label before the offer, so the offer has an m=application section. */
  readonly dataChannel?: string;
}

/** A peer that publishes (`sendonly`, or `sendrecv` for loopback) or subscribes (`recvonly`). */
export function testPeer(
  direction: "sendonly" | "recvonly" | "sendrecv",
  onCandidate: (candidate: Candidate) => void,
  options: TestPeerOptions = {},
): TestPeer {
  const peer = createClientPeer();
  const video = peer.addTransceiver("video", { direction });
  const audio = peer.addTransceiver("audio", { direction });
  const channel = options.dataChannel === undefined ? undefined : peer.createDataChannel(options.dataChannel);
  const candidates: Candidate[] = [];
  // Tracks are announced while the answer is applied: listen from the start.
  const tracks: MediaStreamTrack[] = [];
  peer.onTrack.subscribe((track) => tracks.push(track));
  peer.onIceCandidate.subscribe((candidate) => {
    if (!candidate) return;
    const init = candidate.toJSON();
    const entry = {
      candidate: init.candidate ?? "",
      sdpMid: init.sdpMid ?? null,
      sdpMLineIndex: init.sdpMLineIndex ?? 0,
    };
    candidates.push(entry);
    onCandidate(entry);
  });
  return {
    peer,
    video,
    audio,
    channel,
    candidates,
    videoPackets(marker) {
      let counter: ReturnType<typeof countMarkedPackets> | undefined;
      return () => {
        if (!counter) {
          const track = tracks.find((entry) => entry.kind === "video");
          if (track) counter = countMarkedPackets(track, marker);
        }
        return counter?.count() ?? 0;
      };
    },
    async offer() {
      const offer = await peer.createOffer();
      await peer.setLocalDescription(offer);
      return stripCandidates(peer.localDescription?.sdp ?? "");
    },
    async answer(sdp) {
      await peer.setRemoteDescription({ type: "answer", sdp });
    },
    async addRemote(candidate) {
      await peer.addIceCandidate({
        candidate: candidate.candidate,
        sdpMid: candidate.sdpMid ?? undefined,
        sdpMLineIndex: candidate.sdpMLineIndex,
      });
    },
    close: () => peer.close(),
  };
}

/** The parts every SDP answer from a WebRTC endpoint must have. */
export function expectValidAnswer(sdp: string, mediaDirection: RegExp): void {
  const lines = sdp.split("\r\n");
  const problems: string[] = [];
  if (lines[0] !== "v=0") problems.push("does not start with v=0");
  for (const prefix of ["o=", "s=", "t="])
    if (!lines.some((line) => line.startsWith(prefix))) problems.push(`no ${prefix} line`);
  if (!lines.some((line) => line.startsWith("m=video "))) problems.push("no video section");
  if (!lines.some((line) => line.startsWith("m=audio "))) problems.push("no audio section");
  if (!lines.some((line) => line.startsWith("a=ice-ufrag:"))) problems.push("no ICE credentials");
  if (!lines.some((line) => line.startsWith("a=fingerprint:"))) problems.push("no DTLS fingerprint");
  if (!mediaDirection.test(sdp)) problems.push(`direction does not match ${mediaDirection}`);
  if (problems.length) throw new Error(`invalid SDP answer (${problems.join(", ")}):\n${sdp}`);
}
