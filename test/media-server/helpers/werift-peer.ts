import {
  type MediaStreamTrack,
  ReceiverEstimatedMaxBitrate,
  RTCPeerConnection,
  type RTCRtpTransceiver,
  RtcpPayloadSpecificFeedback,
  RtpHeader,
  RtpPacket,
  useNACK,
  useOPUS,
  usePLI,
  useREMB,
  useSdesMid,
  useVP8,
} from "werift";

/** A werift peer standing in for a browser, on 127.0.0.1 only, without STUN. */
export function createClientPeer(): RTCPeerConnection {
  const peer = new RTCPeerConnection({
    iceServers: [],
    bundlePolicy: "max-bundle",
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceInterfaceAddresses: { udp4: "127.0.0.1" },
    iceUseIpv6: false,
    iceFilterCandidatePair: (pair) =>
      pair.localCandidate.host === "127.0.0.1" && pair.remoteCandidate.host === "127.0.0.1",
    codecs: {
      audio: [useOPUS({ payloadType: 109 })],
      video: [useVP8({ payloadType: 120, rtcpFeedback: [useNACK(), usePLI(), useREMB()] })],
    },
    headerExtensions: { audio: [useSdesMid()], video: [useSdesMid()] },
  });
  // `iceServers: []` is not enough: werift then asks stun.l.google.com, and setLocalDescription waits
  // for that (up to 5 s when DNS or the network does not answer). These peers gather host candidates only.
  const setLocalDescription = peer.setLocalDescription.bind(peer) as (...args: unknown[]) => Promise<unknown>;
  peer.setLocalDescription = ((...args: unknown[]) => {
    for (const transport of peer.iceTransports) transport.connection.stunServer = undefined;
    return setLocalDescription(...args);
  }) as typeof peer.setLocalDescription;
  return peer;
}

export function stripCandidates(sdp: string): string {
  return sdp
    .split("\r\n")
    .filter((line) => !line.startsWith("a=candidate:") && line !== "a=end-of-candidates")
    .join("\r\n");
}

/** What a publishing peer saw coming back from the server. */
export interface PublisherFeedback {
  plis: number;
  rembBitrates: number[];
}

/**
 * Sends synthetic RTP on a sendonly transceiver: each payload starts with a
 * marker so the receiving side can tell forwarded packets from anything else.
 */
export function startSyntheticMedia(
  transceiver: RTCRtpTransceiver,
  marker: Buffer,
  packetsPerSecond: number,
  clockStep: number,
): { stop(): void; feedback: PublisherFeedback } {
  const feedback: PublisherFeedback = { plis: 0, rembBitrates: [] };
  transceiver.sender.onPictureLossIndication.subscribe(() => {
    feedback.plis += 1;
  });
  transceiver.sender.onRtcp.subscribe((packet) => {
    if (packet instanceof RtcpPayloadSpecificFeedback && packet.feedback instanceof ReceiverEstimatedMaxBitrate) {
      feedback.rembBitrates.push(Number(packet.feedback.bitrate));
    }
  });
  let sequenceNumber = 1000;
  let timestamp = 5000;
  const timer = setInterval(() => {
    sequenceNumber = (sequenceNumber + 1) & 0xffff;
    timestamp = (timestamp + clockStep) >>> 0;
    const header = new RtpHeader({ payloadType: 0, sequenceNumber, timestamp, marker: true });
    const payload = Buffer.concat([marker, Buffer.alloc(200, sequenceNumber & 0xff)]);
    transceiver.sender.sendRtp(new RtpPacket(header, payload)).catch(() => {});
  }, 1000 / packetsPerSecond);
  return { stop: () => clearInterval(timer), feedback };
}

/** Counts packets on a received track whose payload starts with `marker`. */
export function countMarkedPackets(
  track: MediaStreamTrack,
  marker: Buffer,
): { count: () => number; other: () => number } {
  let marked = 0;
  let other = 0;
  track.onReceiveRtp.subscribe((packet) => {
    if (packet.payload.subarray(0, marker.length).equals(marker)) marked += 1;
    else other += 1;
  });
  return { count: () => marked, other: () => other };
}

export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
