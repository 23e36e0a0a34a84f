import {
  type RTCRtpTransceiver,
  RtcpSenderInfo,
  RtcpSourceDescriptionPacket,
  RtcpSrPacket,
  type RtpPacket,
  SourceDescriptionChunk,
  SourceDescriptionItem,
  StunProtocol,
  RTP_EXTENSION_URI,
  type UdpTransport,
} from "werift";
import type { MediaKind } from "../../rtp-forwarding.ts";
import { RtpRewriter } from "./rtp-rewriter.ts";
import { isSupportedProfile, RolloverTracker, SrtpContext } from "./srtp-sender.ts";

/** Sent packets kept for NACK, per video stream: ~4 s at 0.5 Mbps, about 300 kB. */
const VIDEO_HISTORY = 256;
/** Media flow turns NOT_FLOWING after 2 s without packets (media-flow.ts): reporting every 250 ms is plenty. */
const FLOW_MARK_INTERVAL_MS = 250;
/** Seconds between 1900 (NTP's epoch) and 1970. */
const NTP_EPOCH_OFFSET = 2_208_988_800;

type SrtpSession = RTCRtpTransceiver["dtlsTransport"]["srtp"];

/** Where packets leave: a UDP socket and the selected pair's remote address, or werift's own send (TCP, TURN). */
interface Route {
  pair: object;
  udp: UdpTransport | undefined;
  host: string;
  port: number;
}

/**
 * The lean send path of one sending transceiver: a packet from the graph is
 * rewritten into one reused buffer (RtpRewriter), encrypted once with our
 * own SRTP context (keys from werift's DTLS-SRTP session), and written on the
 * selected ICE pair's UDP socket, synchronously, without werift's per-packet
 * clone, header-extension rebuild, promise chain and bandwidth-estimation
 * bookkeeping. werift keeps ICE, DTLS, the keys and RTCP receiving; this
 * class also makes the sender reports werift's sender would have made, and
 * answers NACKs from the packets it sent.
 */
export class FastRtpSender {
  private readonly transceiver: RTCRtpTransceiver;
  private readonly rewriter: RtpRewriter;
  private session: SrtpSession | undefined;
  private srtp: SrtpContext | undefined;
  private rollover = new RolloverTracker();
  private route: Route | undefined;
  private readonly history: (Buffer | undefined)[];
  private readonly historySequence: Int32Array;
  private packetCount = 0;
  private octetCount = 0;
  private lastSentAt = 0;
  private lastFlowMarkAt = Number.NEGATIVE_INFINITY;
  private clockRate = 90_000;
  private readonly cname: string | undefined;
  private checkedCodec: object | undefined;
  private codecMime = "";

  constructor(transceiver: RTCRtpTransceiver, kind: MediaKind) {
    this.transceiver = transceiver;
    const sender = transceiver.sender;
    const midExtension = transceiver.headerExtensions.find((extension) => extension.uri === RTP_EXTENSION_URI.sdesMid);
    const mid = transceiver.mid;
    this.rewriter = new RtpRewriter(
      sender.ssrc,
      kind === "video" ? 3000 : 960,
      midExtension && mid && midExtension.id >= 1 && midExtension.id <= 14 && mid.length >= 1 && mid.length <= 16
        ? { id: midExtension.id, value: mid }
        : undefined,
    );
    const historySize = kind === "video" ? VIDEO_HISTORY : 0;
    this.history = new Array<Buffer | undefined>(historySize);
    this.historySequence = new Int32Array(historySize).fill(-1);
    this.cname = cnameOf(sender);
  }

  /** Whether packets of this codec may go to the peer (the negotiated codec; compared once per codec object). */
  accepts(mimeType: string): boolean {
    const codec = this.transceiver.sender.codec;
    if (!codec) return false;
    if (codec !== this.checkedCodec) {
      this.checkedCodec = codec;
      this.codecMime = codec.mimeType.toLowerCase();
    }
    return mimeType === this.codecMime || mimeType.toLowerCase() === this.codecMime;
  }

  /**
   * Sends one packet from the graph; drops it (as werift does) while DTLS is not up or no pair is selected.
   * True once per FLOW_MARK_INTERVAL_MS of sent packets: the caller then reports media flowing out (a
   * per-packet report showed up in the profile, and flow state only changes after seconds of silence).
   */
  send(packet: RtpPacket): boolean {
    const dtls = this.transceiver.dtlsTransport;
    const codec = this.transceiver.sender.codec;
    if (dtls.state !== "connected" || !codec) return false;
    const srtp = this.srtpContext();
    const route = this.currentRoute();
    if (!srtp || !route) return false;
    const rewriter = this.rewriter;
    if (!rewriter.write(packet, codec.payloadType)) return false;
    const sequenceNumber = rewriter.sequenceNumber;
    const roc = this.rollover.rolloverFor(sequenceNumber);
    const out = srtp.protect(
      rewriter.buffer,
      rewriter.headerLength,
      rewriter.length,
      rewriter.ssrc,
      sequenceNumber,
      roc,
    );
    this.transmit(route, out);
    this.packetCount = (this.packetCount + 1) >>> 0;
    this.octetCount = (this.octetCount + packet.payload.length) >>> 0;
    this.lastSentAt = performance.now();
    this.clockRate = codec.clockRate;
    const historySize = this.history.length;
    if (historySize > 0) {
      const slot = sequenceNumber % historySize;
      this.history[slot] = out;
      this.historySequence[slot] = sequenceNumber;
    }
    if (this.lastSentAt - this.lastFlowMarkAt < FLOW_MARK_INTERVAL_MS) return false;
    this.lastFlowMarkAt = this.lastSentAt;
    return true;
  }

  /** NACK (RFC 4585): the packets still in the history are sent again, byte for byte (same index, same SRTP). */
  retransmit(lost: readonly number[]): void {
    const route = this.currentRoute();
    const historySize = this.history.length;
    if (!route || historySize === 0 || this.transceiver.dtlsTransport.state !== "connected") return;
    for (const number of lost) {
      // werift adds the BLP offsets to the PID without wrapping (PID 65535, BLP bit 0 gives 65536): packet 0.
      const sequenceNumber = number & 0xffff;
      const slot = sequenceNumber % historySize;
      const packet = this.history[slot];
      if (packet && this.historySequence[slot] === sequenceNumber) this.transmit(route, packet);
    }
  }

  /**
   * RTCP SR (+ SDES CNAME) for this stream, or nothing before its first
   * packet. The RTP timestamp is the last packet's, moved on by the time
   * since it was sent, so that it matches the NTP time (what receivers use
   * for lip sync).
   */
  senderReport(): Array<RtcpSrPacket | RtcpSourceDescriptionPacket> {
    if (this.packetCount === 0) return [];
    const nowMs = performance.timeOrigin + performance.now();
    const elapsed = performance.now() - this.lastSentAt;
    const rtpTimestamp = (this.rewriter.timestamp + Math.round((elapsed * this.clockRate) / 1000)) >>> 0;
    const ssrc = this.rewriter.ssrc;
    const packets: Array<RtcpSrPacket | RtcpSourceDescriptionPacket> = [
      new RtcpSrPacket({
        ssrc,
        senderInfo: new RtcpSenderInfo({
          ntpTimestamp: ntpTimestamp(nowMs),
          rtpTimestamp,
          packetCount: this.packetCount,
          octetCount: this.octetCount,
        }),
      }),
    ];
    if (this.cname) {
      packets.push(
        new RtcpSourceDescriptionPacket({
          chunks: [
            new SourceDescriptionChunk({
              source: ssrc,
              items: [new SourceDescriptionItem({ type: 1, text: this.cname })],
            }),
          ],
        }),
      );
    }
    return packets;
  }

  /** The SRTP context for the DTLS session's current keys (rebuilt if werift renews the session). */
  private srtpContext(): SrtpContext | undefined {
    const dtls = this.transceiver.dtlsTransport;
    if (!dtls.srtpStarted) return undefined;
    const session = dtls.srtp;
    if (session === this.session) return this.srtp;
    this.session = session;
    const { profile, keys } = session.config;
    this.srtp = isSupportedProfile(profile)
      ? new SrtpContext(profile, keys.localMasterKey, keys.localMasterSalt)
      : undefined;
    this.rollover = new RolloverTracker();
    return this.srtp;
  }

  private currentRoute(): Route | undefined {
    const connection = this.transceiver.dtlsTransport.iceTransport.connection;
    const pair = connection.nominated;
    if (!pair || connection.state === "closed" || connection.state === "failed") return undefined;
    if (this.route?.pair === pair) return this.route;
    const [host, port] = pair.remoteAddr;
    const protocol = pair.protocol;
    // A UDP host or reflexive pair is written straight on its socket; anything else goes through werift.
    const udp = protocol instanceof StunProtocol ? protocol.transport : undefined;
    this.route = { pair, udp, host, port };
    return this.route;
  }

  private transmit(route: Route, packet: Buffer): void {
    const udp = route.udp;
    if (udp) {
      // Sending on a closed socket throws; the peer connection is going away then.
      if (!udp.closed) udp.socket.send(packet, route.port, route.host);
      return;
    }
    this.transceiver.dtlsTransport.iceTransport.connection.send(packet).catch(() => {});
  }
}

/** NTP time (RFC 3550 §4): seconds since 1900 in the high 32 bits, the fraction in the low 32. */
function ntpTimestamp(unixMs: number): bigint {
  const seconds = Math.floor(unixMs / 1000);
  const fraction = Math.floor(((unixMs - seconds * 1000) / 1000) * 2 ** 32);
  return (BigInt(seconds + NTP_EPOCH_OFFSET) << 32n) | BigInt(fraction >>> 0);
}

/** werift keeps the sender's CNAME private; read it if present, for the SDES that goes with the SR. */
function cnameOf(sender: object): string | undefined {
  const value: unknown = Reflect.get(sender, "cname");
  return typeof value === "string" && value.length > 0 ? value : undefined;
}
