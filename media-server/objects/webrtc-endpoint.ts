import { RTCPeerConnection } from "werift";
import { mediaForwardingOf } from "../config.ts";
import type { MediaType } from "../protocol.ts";
import { type ForwardedRtp, forwardableCopy, type MediaKind } from "../rtp-forwarding.ts";
import { peerConfig } from "../webrtc-config.ts";
import { MEDIA_ELEMENT_EVENTS, MediaElement, mediaTypeOf } from "./media-element.ts";
import { MediaObject, type MediaServerContext } from "./media-object.ts";
import { invokeOperation, type Caller, type RawParams } from "./operations.ts";
import { DataChannels } from "./webrtc/data-channels.ts";
import type { VideoQuality } from "./webrtc/layer-selector.ts";
import { Negotiation } from "./webrtc/negotiation.ts";
import {
  BANDWIDTH_PROPERTIES,
  type BandwidthProperty,
  type NetworkProperty,
  WEBRTC_ENDPOINT_OPERATIONS,
} from "./webrtc/operations.ts";
import { PeerRtp } from "./webrtc/peer-rtp.ts";

const WEBRTC_ENDPOINT_EVENTS = [
  ...MEDIA_ELEMENT_EVENTS,
  "MediaSessionStarted",
  "MediaSessionTerminated",
  "ConnectionStateChanged",
  "MediaStateChanged",
  "DataChannelClosed",
  "DataChannelOpened",
  "DtlsConnectionStateChange",
  "IceCandidateFound",
  "IceComponentStateChanged",
  "IceGatheringDone",
  "NewCandidatePairSelected",
] as const;

type MediaState = "CONNECTED" | "DISCONNECTED";

/**
 * One werift RTCPeerConnection facing one remote peer (a browser), as a
 * media element. The concerns live beside it in webrtc/: the operation
 * table (operations.ts), SDP and ICE (negotiation.ts), RTP/RTCP with the
 * peer (peer-rtp.ts) and data channels (data-channels.ts). This class joins
 * them to the media graph and reports the connection's state.
 */
export class WebRtcEndpoint extends MediaElement {
  readonly typeName = "WebRtcEndpoint";
  readonly hierarchy = [
    "kurento.BaseRtpEndpoint",
    "kurento.SdpEndpoint",
    "kurento.SessionEndpoint",
    "kurento.Endpoint",
    "kurento.MediaElement",
    "kurento.MediaObject",
  ] as const;
  readonly events = WEBRTC_ENDPOINT_EVENTS;

  readonly useDataChannels: boolean;
  readonly negotiation: Negotiation;
  readonly dataChannels: DataChannels;
  /** Bandwidth settings in kbps, 0 for "no limit"; the video ones shape the REMB sent to the peer. */
  readonly bandwidth = new Map<BandwidthProperty, number>(BANDWIDTH_PROPERTIES.map((name) => [name, 0]));
  /** STUN/TURN and interface settings (KMS names); STUN and TURN feed the ICE gathering, the rest is only reported. */
  readonly network = new Map<NetworkProperty, unknown>();
  private readonly pc: RTCPeerConnection;
  private readonly rtp: PeerRtp;
  private state: MediaState = "DISCONNECTED";

  constructor(context: MediaServerContext, pipeline: MediaObject, options: { useDataChannels: boolean }) {
    super(context, MediaObject.childId(pipeline, "WebRtcEndpoint"), pipeline);
    this.useDataChannels = options.useDataChannels;
    this.pc = new RTCPeerConnection(peerConfig(context.webrtc));
    this.rtp = new PeerRtp(
      this.pc,
      {
        id: this.id,
        log: context.log,
        isReleased: () => this.released,
        isConnected: () => this.state === "CONNECTED",
        received: (kind, packet, mimeType, layer) => {
          const mediaType = mediaTypeOf(kind);
          this.flowIn.mark(mediaType);
          if (this.sinksOf(mediaType).size === 0) return;
          const forwarded: ForwardedRtp = { packet: forwardableCopy(packet), mimeType };
          if (layer) forwarded.layer = layer;
          this.deliverRtp(kind, forwarded);
        },
        sending: (kind) => {
          if (this.state === "CONNECTED") this.flowOut.mark(mediaTypeOf(kind));
        },
        keyframeWanted: (layer) => this.requestKeyframeFromSource(layer),
        rembKbps: () => this.rembKbps(),
      },
      mediaForwardingOf(context.webrtc),
    );
    this.negotiation = new Negotiation(this.pc, this, () => this.rtp.negotiated());
    this.dataChannels = new DataChannels(this.pc, this, {
      isNegotiated: () => this.negotiation.negotiated,
      received: (label, message) => this.deliverData(label, message),
    });
    this.pc.connectionStateChange.subscribe((state) => this.connectionStateChanged(state));
  }

  /** KMS's MediaState (and ConnectionState): CONNECTED while the peer's DTLS is up. */
  get mediaState(): MediaState {
    return this.state;
  }

  invoke(name: string, params: RawParams, caller?: Caller): unknown {
    return invokeOperation(WEBRTC_ENDPOINT_OPERATIONS, this, name, params, caller);
  }

  acceptRtp(kind: MediaKind, rtp: ForwardedRtp): void {
    this.rtp.send(kind, rtp);
  }

  acceptData(label: string, message: string | Buffer): void {
    this.dataChannels.accept(label, message);
  }

  requestKeyframe(layer?: number): void {
    this.rtp.requestKeyframe(layer);
  }

  /** Which simulcast layer this endpoint sends its peer when its source is a simulcast publisher. */
  setVideoQuality(quality: VideoQuality): void {
    this.rtp.setVideoQuality(quality);
  }

  get videoQuality(): VideoQuality {
    return this.rtp.videoQuality;
  }

  /** The simulcast layer sent now (0 lowest), if the source sends simulcast. */
  get currentVideoLayer(): number | undefined {
    return this.rtp.currentVideoLayer;
  }

  /** How many simulcast layers this endpoint's peer publishes (0: one stream). */
  get simulcastLayers(): number {
    return this.rtp.publishedLayers;
  }

  protected override sourceChanged(type: MediaType): void {
    if (type === "VIDEO") this.rtp.videoSourceChanged();
  }

  /**
   * KMS-like REMB: the default cap, lowered by this endpoint's
   * maxVideoRecvBandwidth and by maxVideoSendBandwidth of every WebRtcEndpoint
   * downstream (that is the only way a forwarding server can honour a send
   * limit; not for a simulcast publisher), raised to minVideoRecvBandwidth.
   */
  private rembKbps(): number {
    let kbps = this.context.webrtc.rembKbps;
    const maxRecv = this.bandwidth.get("maxVideoRecvBandwidth") ?? 0;
    if (maxRecv > 0) kbps = Math.min(kbps, maxRecv);
    // A simulcast publisher sends every layer; each subscriber's limit is met by the layer it gets instead.
    const downstream = this.rtp.publishedLayers > 1 ? undefined : this.downstreamSendLimitKbps();
    if (downstream !== undefined) kbps = Math.min(kbps, downstream);
    return Math.max(kbps, this.bandwidth.get("minVideoRecvBandwidth") ?? 0);
  }

  private downstreamSendLimitKbps(): number | undefined {
    let limit: number | undefined;
    const visited = new Set<MediaElement>();
    const pending = [...this.sinksOf("VIDEO")];
    for (let element = pending.pop(); element; element = pending.pop()) {
      if (visited.has(element)) continue;
      visited.add(element);
      if (element instanceof WebRtcEndpoint) {
        const max = element.bandwidth.get("maxVideoSendBandwidth") ?? 0;
        if (max > 0) limit = Math.min(limit ?? max, max);
      } else {
        pending.push(...element.sinksOf("VIDEO"));
      }
    }
    return limit;
  }

  private connectionStateChanged(state: string): void {
    if (state === "connected") {
      this.setMediaState("CONNECTED");
      this.emitEvent("DtlsConnectionStateChange", { streamId: "0", componentId: 1, state: "CONNECTED" });
      this.emitEvent("MediaSessionStarted");
      const candidatePair = this.negotiation.selectedPair();
      if (candidatePair) this.emitEvent("NewCandidatePairSelected", { candidatePair });
      // This peer can only show video from a keyframe sent after its DTLS came up.
      this.requestKeyframeFromSource();
    } else if (state === "disconnected" || state === "failed" || state === "closed") {
      const wasConnected = this.state === "CONNECTED";
      this.setMediaState("DISCONNECTED");
      if (wasConnected && state !== "disconnected") this.emitEvent("MediaSessionTerminated");
    }
  }

  private setMediaState(next: MediaState): void {
    if (next === this.state) return;
    const previous = this.state;
    this.state = next;
    this.emitEvent("MediaStateChanged", { oldState: previous, newState: next });
    this.emitEvent("ConnectionStateChanged", { oldState: previous, newState: next });
  }

  protected override async dispose(): Promise<void> {
    this.rtp.dispose();
    super.dispose();
    await this.pc.close();
  }
}
