import {
  GenericNack,
  type MediaStreamTrack,
  type RTCPeerConnection,
  type RTCRtpTransceiver,
  ReceiverEstimatedMaxBitrate,
  RtcpPayloadSpecificFeedback,
  RtcpRrPacket,
  RtcpTransportLayerFeedback,
  type RtpPacket,
} from "werift";
import type { MediaForwarding } from "../../config.ts";
import {
  type ForwardedRtp,
  KeyframeRequester,
  type MediaKind,
  rembPacket,
  type SimulcastLayer,
  sameCodec,
} from "../../rtp-forwarding.ts";
import { FastRtpSender } from "./fast-sender.ts";
import { LayerSelector, type VideoQuality } from "./layer-selector.ts";

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
  /** RTP from the peer, its codec known (and its simulcast layer, if any), to go down the graph. */
  received(kind: MediaKind, packet: RtpPacket, mimeType: string, layer: SimulcastLayer | undefined): void;
  /** RTP from the graph is about to be sent to the peer. */
  sending(kind: MediaKind): void;
  /** The peer asked for a keyframe (PLI or FIR), or its layer switch waits for one of `layer`. */
  keyframeWanted(layer?: number): void;
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
  /** A simulcast publisher's layers by RID (from the offer's a=simulcast order), and each one's SSRC once seen. */
  private readonly layerOfRid = new Map<string, SimulcastLayer>();
  private readonly layerSsrcs = new Map<number, number>();
  /** Keyframe requests per publisher layer ("all": every layer, or the one stream without simulcast). */
  private readonly layerKeyframes = new Map<number | "all", KeyframeRequester>();
  /** As a subscriber: which layer of a simulcast source this peer receives. */
  private readonly layers: LayerSelector;
  private videoReceiver: RTCRtpTransceiver | undefined;
  private readonly adoptedTracks = new WeakSet<MediaStreamTrack>();
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
    this.keyframes = new KeyframeRequester(PLI_MIN_INTERVAL_MS, () => this.sendPli(undefined));
    this.layerKeyframes.set("all", this.keyframes);
    this.layers = new LayerSelector((layer) => hooks.keyframeWanted(layer));
    pc.onTrack.subscribe((track) => this.adoptIncomingTrack(track));
    this.rembTimer = setInterval(() => this.sendRemb(), REMB_INTERVAL_MS);
    this.rembTimer.unref();
  }

  /** Sends RTP from the graph to the peer, if the peer negotiated a sending transceiver with the packet's codec. */
  send(kind: MediaKind, rtp: ForwardedRtp): void {
    if (rtp.layer && !this.layers.accept(rtp.layer, rtp.mimeType, rtp.packet.payload)) return;
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

  /**
   * Asks the peer (a publisher) for a keyframe, at most once per
   * PLI_MIN_INTERVAL_MS: of one simulcast layer, or of every layer when none
   * is named.
   */
  requestKeyframe(layer?: number): void {
    if (layer === undefined || this.layerOfRid.size === 0) {
      this.keyframes.request();
      return;
    }
    let requester = this.layerKeyframes.get(layer);
    if (!requester) {
      requester = new KeyframeRequester(PLI_MIN_INTERVAL_MS, () => this.sendPli(layer));
      this.layerKeyframes.set(layer, requester);
    }
    requester.request();
  }

  /** As a subscriber of a simulcast source: the layer this peer should receive. */
  setVideoQuality(quality: VideoQuality): void {
    this.layers.setQuality(quality);
  }

  get videoQuality(): VideoQuality {
    return this.layers.videoQuality;
  }

  /** The simulcast layer forwarded to this peer now, if its source sends simulcast. */
  get currentVideoLayer(): number | undefined {
    return this.layers.currentLayer;
  }

  /** The number of simulcast layers this peer (a publisher) negotiated; 0 without simulcast. */
  get publishedLayers(): number {
    return this.layerOfRid.size;
  }

  /** The graph gave this peer another video source: its layers are not the old one's. */
  videoSourceChanged(): void {
    this.layers.reset();
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
          // The subscriber's view of its link: what picks its simulcast layer besides the quality it asks for.
          if (packet instanceof RtcpPayloadSpecificFeedback && packet.feedback instanceof ReceiverEstimatedMaxBitrate)
            this.layers.noteEstimate(Number(packet.feedback.bitrate));
          if (packet instanceof RtcpRrPacket)
            for (const report of packet.reports)
              if (report.ssrc === transceiver.sender.ssrc) this.layers.noteLoss(report.fractionLost / 256);
        });
      }
    }
    if (this.forwarding === "fast") this.adoptFastSenders();
    this.learnSimulcastLayers();
  }

  /**
   * werift makes one remote track per RID of the offer's a=simulcast, in the
   * offer's order: that order ranks the layers (lowest first, as the client
   * lists its sendEncodings).
   */
  private learnSimulcastLayers(): void {
    this.layerOfRid.clear();
    const video = this.pc.getTransceivers().find((transceiver) => transceiver.kind === "video");
    const rids = (video?.receiver.tracks ?? []).flatMap((track) => (track.rid ? [track.rid] : []));
    rids.forEach((rid, index) => {
      this.layerOfRid.set(rid, { index, count: rids.length });
    });
  }

  dispose(): void {
    clearInterval(this.rembTimer);
    if (this.senderReportTimer) clearInterval(this.senderReportTimer);
    for (const requester of this.layerKeyframes.values()) requester.dispose();
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

  /**
   * werift announces one track per receiving transceiver, also for a
   * simulcast publisher whose transceiver has a track per RID: the other
   * layers' tracks are taken from the transceiver here.
   */
  private adoptIncomingTrack(announced: MediaStreamTrack): void {
    const transceiver = this.pc.getTransceivers().find((candidate) => candidate.receiver.tracks.includes(announced));
    if (!transceiver) return;
    const kind = announced.kind;
    if (kind !== "audio" && kind !== "video") return;
    if (kind === "video") this.videoReceiver = transceiver;
    for (const track of transceiver.receiver.tracks) {
      if (this.adoptedTracks.has(track)) continue;
      this.adoptedTracks.add(track);
      const rid = track.rid;
      track.onReceiveRtp.subscribe((packet) => this.forwardIncoming(kind, transceiver, packet, rid));
    }
  }

  private forwardIncoming(kind: MediaKind, transceiver: RTCRtpTransceiver, packet: RtpPacket, rid?: string): void {
    const mimeType = this.codecOf(transceiver, packet.header.payloadType);
    if (mimeType === undefined || NON_MEDIA_CODECS.has(mimeType)) return;
    const layer = rid === undefined ? undefined : this.layerOfRid.get(rid);
    if (kind === "video") {
      this.publisherVideoSsrc = packet.header.ssrc;
      if (layer) this.layerSsrcs.set(layer.index, packet.header.ssrc);
    }
    this.hooks.received(kind, packet, mimeType, layer);
  }

  private codecOf(transceiver: RTCRtpTransceiver, payloadType: number): string | undefined {
    let codecs = this.payloadCodecs.get(transceiver);
    if (!codecs) {
      codecs = new Map(transceiver.codecs.map((codec) => [codec.payloadType, codec.mimeType.toLowerCase()]));
      this.payloadCodecs.set(transceiver, codecs);
    }
    return codecs.get(payloadType);
  }

  /** PLI on one layer's SSRC, or on every stream the publisher sends (each simulcast layer has its own encoder). */
  private sendPli(layer: number | undefined): void {
    const transceiver = this.videoReceiver;
    if (!transceiver || this.hooks.isReleased()) return;
    const ssrcs = layer === undefined ? this.videoSsrcs() : [this.layerSsrcs.get(layer)];
    for (const ssrc of ssrcs) if (ssrc !== undefined) transceiver.receiver.sendRtcpPLI(ssrc).catch(() => {});
  }

  private videoSsrcs(): number[] {
    if (this.layerSsrcs.size > 0) return [...this.layerSsrcs.values()];
    return this.publisherVideoSsrc === undefined ? [] : [this.publisherVideoSsrc];
  }

  private sendRemb(): void {
    const transceiver = this.videoReceiver;
    const ssrcs = this.videoSsrcs();
    if (!transceiver || ssrcs.length === 0 || !this.hooks.isConnected()) return;
    const kbps = this.hooks.rembKbps();
    transceiver.dtlsTransport.sendRtcp([rembPacket(transceiver.receiver.rtcpSsrc, ssrcs, kbps * 1000)]).catch(() => {});
  }
}
