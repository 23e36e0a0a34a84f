import {
  GenericNack,
  type MediaStreamTrack,
  type RTCPeerConnection,
  type RTCRtpTransceiver,
  RtcpPayloadSpecificFeedback,
  RtcpTransportLayerFeedback,
  type RtpPacket,
} from "werift";
import type { MediaForwarding } from "../../config.ts";
import { type ForwardedRtp, KeyframeRequester, type MediaKind, rembPacket, sameCodec } from "../../rtp-forwarding.ts";
import { FastRtpSender } from "./fast-sender.ts";

const PLI_MIN_INTERVAL_MS = 300;
/** RTCP payload-specific feedback format of a Full Intra Request (RFC 5104); werift parses FIR but exports no class. */
const FIR_FORMAT = 4;
const REMB_INTERVAL_MS = 1000;
/** RFC 3550 suggests ~5 s for a big session; one second keeps a new subscriber's lip sync quick, as werift does. */
const SENDER_REPORT_INTERVAL_MS = 1000;
const NON_MEDIA_CODECS = new Set([
  "video/rtx",
  "video/red",
  "video/ulpfec",
  "audio/red",
  "audio/cn",
  "audio/telephone-event",
]);

/** The endpoint side of the RTP path: the media graph and the endpoint's state, which only the endpoint can reach. */
export interface PeerRtpHooks {
  readonly id: string;
  log(message: string): void;
  isReleased(): boolean;
  /** The peer's DTLS is up (media state CONNECTED). */
  isConnected(): boolean;
  /** RTP from the peer, its codec known, to go down the graph. */
  received(kind: MediaKind, packet: RtpPacket, mimeType: string): void;
  /** RTP from the graph is about to be sent to the peer. */
  sending(kind: MediaKind): void;
  /** The peer asked for a keyframe (PLI or FIR). */
  keyframeWanted(): void;
  /** The bitrate the publisher may use, in kbps, sent as REMB. */
  rembKbps(): number;
}

/**
 * RTP and RTCP between one werift peer connection and the media graph. RTP
 * from the peer goes down the graph; RTP from the graph goes to the peer with
 * its SSRC, sequence numbers and timestamps rewritten into one continuous
 * stream. Keyframe requests from the peer (PLI/FIR) go up the graph; the
 * publisher gets PLI when a sink needs a keyframe and REMB once a second,
 * since werift does neither on its own.
 */
export class PeerRtp {
  private readonly pc: RTCPeerConnection;
  private readonly hooks: PeerRtpHooks;
  private publisherVideoSsrc: number | undefined;
  private videoReceiver: RTCRtpTransceiver | undefined;
  private readonly lastSourceSsrc = new Map<MediaKind, number>();
  private readonly sendingTransceivers = new Map<MediaKind, RTCRtpTransceiver>();
  private readonly watchedSenders = new WeakSet<RTCRtpTransceiver>();
  private readonly payloadCodecs = new WeakMap<RTCRtpTransceiver, Map<number, string>>();
  private readonly keyframes: KeyframeRequester;
  private readonly rembTimer: NodeJS.Timeout;
  private readonly forwarding: MediaForwarding;
  /** MEDIA_FORWARDING=fast: the lean sender of each sending transceiver (kept across renegotiations). */
  private readonly fastSenders = new Map<MediaKind, FastRtpSender>();
  private readonly fastSenderOf = new WeakMap<RTCRtpTransceiver, FastRtpSender>();
  private senderReportTimer: NodeJS.Timeout | undefined;

  constructor(pc: RTCPeerConnection, hooks: PeerRtpHooks, forwarding: MediaForwarding = "werift") {
    this.pc = pc;
    this.hooks = hooks;
    this.forwarding = forwarding;
    this.keyframes = new KeyframeRequester(PLI_MIN_INTERVAL_MS, () => this.sendPli());
    pc.onTrack.subscribe((track) => this.adoptIncomingTrack(track));
    this.rembTimer = setInterval(() => this.sendRemb(), REMB_INTERVAL_MS);
    this.rembTimer.unref();
  }

  /** Sends RTP from the graph to the peer, if the peer negotiated a sending transceiver with the packet's codec. */
  send(kind: MediaKind, rtp: ForwardedRtp): void {
    const fast = this.fastSenders.get(kind);
    if (fast) {
      if (fast.accepts(rtp.mimeType) && fast.send(rtp.packet)) this.hooks.sending(kind);
      return;
    }
    const transceiver = this.sendingTransceivers.get(kind);
    const codec = transceiver?.sender.codec;
    if (!transceiver || !codec || !sameCodec(codec.mimeType, rtp.mimeType)) return;
    const ssrc = rtp.packet.header.ssrc;
    const previous = this.lastSourceSsrc.get(kind);
    if (previous !== ssrc) {
      // A new stream (another source, or the publisher restarted): keep the peer's sequence numbers
      // and timestamps continuous.
      if (previous !== undefined) transceiver.sender.replaceRTP(rtp.packet.header, true, kind === "video" ? 3000 : 960);
      this.lastSourceSsrc.set(kind, ssrc);
    }
    this.hooks.sending(kind);
    transceiver.sender.sendRtp(rtp.packet).catch((error: unknown) => {
      this.hooks.log(`${this.hooks.id}: sending RTP failed: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  /** Asks the peer (a publisher) for a keyframe, at most once per PLI_MIN_INTERVAL_MS. */
  requestKeyframe(): void {
    this.keyframes.request();
  }

  /** After negotiation: know which transceivers send, and listen to the peer's keyframe requests on them. */
  negotiated(): void {
    this.sendingTransceivers.clear();
    for (const transceiver of this.pc.getTransceivers()) {
      const kind = transceiver.kind;
      if (kind !== "audio" && kind !== "video") continue;
      const direction = transceiver.currentDirection ?? transceiver.direction;
      if ((direction === "sendrecv" || direction === "sendonly") && !this.sendingTransceivers.has(kind)) {
        this.sendingTransceivers.set(kind, transceiver);
      }
      if (kind === "video" && !this.watchedSenders.has(transceiver)) {
        this.watchedSenders.add(transceiver);
        transceiver.sender.onPictureLossIndication.subscribe(() => this.hooks.keyframeWanted());
        transceiver.sender.onRtcp.subscribe((packet) => {
          if (packet instanceof RtcpPayloadSpecificFeedback && packet.feedback.count === FIR_FORMAT)
            this.hooks.keyframeWanted();
          // werift answers NACK from its own history, which the fast path never fills: ours answers instead.
          if (packet instanceof RtcpTransportLayerFeedback && packet.feedback instanceof GenericNack)
            this.fastSenderOf.get(transceiver)?.retransmit(packet.feedback.lost);
        });
      }
    }
    if (this.forwarding === "fast") this.adoptFastSenders();
  }

  dispose(): void {
    clearInterval(this.rembTimer);
    if (this.senderReportTimer) clearInterval(this.senderReportTimer);
    this.keyframes.dispose();
  }

  private adoptFastSenders(): void {
    this.fastSenders.clear();
    for (const [kind, transceiver] of this.sendingTransceivers) {
      let fast = this.fastSenderOf.get(transceiver);
      if (!fast) {
        fast = new FastRtpSender(transceiver, kind);
        this.fastSenderOf.set(transceiver, fast);
      }
      this.fastSenders.set(kind, fast);
    }
    if (this.fastSenders.size > 0 && !this.senderReportTimer) {
      this.senderReportTimer = setInterval(() => this.sendSenderReports(), SENDER_REPORT_INTERVAL_MS);
      this.senderReportTimer.unref();
    }
  }

  /** werift's sender reports start with its own sendRtp, which the fast path bypasses: these take their place. */
  private sendSenderReports(): void {
    if (!this.hooks.isConnected() || this.hooks.isReleased()) return;
    for (const [kind, fast] of this.fastSenders) {
      const packets = fast.senderReport();
      const transceiver = this.sendingTransceivers.get(kind);
      if (packets.length === 0 || !transceiver) continue;
      transceiver.dtlsTransport.sendRtcp(packets).catch(() => {});
    }
  }

  private adoptIncomingTrack(track: MediaStreamTrack): void {
    const transceiver = this.pc.getTransceivers().find((candidate) => candidate.receiver.tracks.includes(track));
    if (!transceiver) return;
    const kind = track.kind;
    if (kind !== "audio" && kind !== "video") return;
    if (kind === "video") this.videoReceiver = transceiver;
    track.onReceiveRtp.subscribe((packet) => this.forwardIncoming(kind, transceiver, packet));
  }

  private forwardIncoming(kind: MediaKind, transceiver: RTCRtpTransceiver, packet: RtpPacket): void {
    const mimeType = this.codecOf(transceiver, packet.header.payloadType);
    if (mimeType === undefined || NON_MEDIA_CODECS.has(mimeType)) return;
    if (kind === "video") this.publisherVideoSsrc = packet.header.ssrc;
    this.hooks.received(kind, packet, mimeType);
  }

  private codecOf(transceiver: RTCRtpTransceiver, payloadType: number): string | undefined {
    let codecs = this.payloadCodecs.get(transceiver);
    if (!codecs) {
      codecs = new Map(transceiver.codecs.map((codec) => [codec.payloadType, codec.mimeType.toLowerCase()]));
      this.payloadCodecs.set(transceiver, codecs);
    }
    return codecs.get(payloadType);
  }

  private sendPli(): void {
    const transceiver = this.videoReceiver;
    const ssrc = this.publisherVideoSsrc;
    if (!transceiver || ssrc === undefined || this.hooks.isReleased()) return;
    transceiver.receiver.sendRtcpPLI(ssrc).catch(() => {});
  }

  private sendRemb(): void {
    const transceiver = this.videoReceiver;
    const ssrc = this.publisherVideoSsrc;
    if (!transceiver || ssrc === undefined || !this.hooks.isConnected()) return;
    const kbps = this.hooks.rembKbps();
    transceiver.dtlsTransport
      .sendRtcp([rembPacket(transceiver.receiver.rtcpSsrc, [ssrc], kbps * 1000)])
      .catch(() => {});
  }
}
