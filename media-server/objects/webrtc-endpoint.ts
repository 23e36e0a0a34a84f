import {
  type MediaStreamTrack,
  type RTCDataChannel,
  RTCPeerConnection,
  type RTCRtpTransceiver,
  RtcpPayloadSpecificFeedback,
  type RtpPacket,
} from "werift";
import { z } from "zod";
import { KurentoError } from "../errors.ts";
import { iceCandidateSchema } from "../protocol.ts";
import {
  type ForwardedRtp,
  forwardableCopy,
  KeyframeRequester,
  type MediaKind,
  rembPacket,
  sameCodec,
} from "../rtp-forwarding.ts";
import { assertParsableSdp, withoutCandidates } from "../sdp.ts";
import { acceptsRemoteCandidate, peerConfig } from "../webrtc-config.ts";
import { MEDIA_ELEMENT_EVENTS, MediaElement, mediaTypeOf } from "./media-element.ts";
import { MediaObject, type MediaServerContext, noParams, type Operation, type OperationTable, operation } from "./media-object.ts";

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

/** Bandwidth settings in kbps; 0 means "no limit". Names are KMS property names (the setter's parameter is the same name). */
const BANDWIDTH_PROPERTIES = [
  "maxVideoSendBandwidth",
  "minVideoSendBandwidth",
  "maxVideoRecvBandwidth",
  "minVideoRecvBandwidth",
  "maxAudioRecvBandwidth",
  "maxEncoderBitrate",
  "minEncoderBitrate",
  "maxOutputBitrate",
  "minOutputBitrate",
  "mtu",
] as const;
type BandwidthProperty = (typeof BANDWIDTH_PROPERTIES)[number];

/** Accepted and remembered so applications configured for KMS keep working; this server only gathers host candidates. */
const NETWORK_PROPERTIES = {
  stunServerAddress: z.string().max(1000),
  stunServerPort: z.number().int().min(0).max(65535),
  turnUrl: z.string().max(2000),
  iceTcp: z.boolean(),
  networkInterfaces: z.string().max(1000),
  externalIPv4: z.string().max(100),
  externalIPv6: z.string().max(100),
  externalAddress: z.string().max(200),
} as const;
type NetworkProperty = keyof typeof NETWORK_PROPERTIES;

type Negotiation = "none" | "offer-generated" | "negotiated";
type MediaState = "CONNECTED" | "DISCONNECTED";

const PLI_MIN_INTERVAL_MS = 300;
/** RTCP payload-specific feedback format of a Full Intra Request (RFC 5104); werift parses FIR but does not export its class. */
const FIR_FORMAT = 4;
const REMB_INTERVAL_MS = 1000;
const MAX_PENDING_DATA_MESSAGES = 100;
const NON_MEDIA_CODECS = new Set(["video/rtx", "video/red", "video/ulpfec", "audio/red", "audio/cn", "audio/telephone-event"]);

interface LocalCandidate {
  candidate: string;
  sdpMid: string | undefined;
  sdpMLineIndex: number | undefined;
}

const offerOptionsSchema = z.object({
  options: z.object({ offerToReceiveAudio: z.boolean().optional(), offerToReceiveVideo: z.boolean().optional() }).loose().nullish(),
});

const capitalised = (name: string) => name.charAt(0).toUpperCase() + name.slice(1);

/**
 * One werift RTCPeerConnection facing one remote peer (a browser). RTP it
 * receives goes down the media graph; RTP reaching it from its sources is
 * sent to the peer. It asks its remote publisher for keyframes (PLI) and
 * sends it REMB, since werift does neither on its own.
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
  private readonly pc: RTCPeerConnection;
  private negotiation: Negotiation = "none";
  private sdpBusy = false;
  private gatherRequested = false;
  private gatheringDone = false;
  private gatheringDoneEmitted = false;
  private readonly localCandidates: LocalCandidate[] = [];
  private emittedCandidates = 0;
  private mediaState: MediaState = "DISCONNECTED";
  private readonly bandwidth = new Map<BandwidthProperty, number>(BANDWIDTH_PROPERTIES.map((name) => [name, 0]));
  private readonly network = new Map<NetworkProperty, unknown>();
  private publisherVideoSsrc: number | undefined;
  private videoReceiver: RTCRtpTransceiver | undefined;
  private readonly lastSourceSsrc = new Map<MediaKind, number>();
  private readonly sendingTransceivers = new Map<MediaKind, RTCRtpTransceiver>();
  private readonly watchedSenders = new WeakSet<RTCRtpTransceiver>();
  private readonly payloadCodecs = new WeakMap<RTCRtpTransceiver, Map<number, string>>();
  private readonly dataChannels = new Set<RTCDataChannel>();
  private readonly pendingData = new Map<RTCDataChannel, Array<string | Buffer>>();
  private readonly keyframes: KeyframeRequester;
  private readonly rembTimer: NodeJS.Timeout;

  constructor(context: MediaServerContext, pipeline: MediaObject, options: { useDataChannels: boolean }) {
    super(context, MediaObject.childId(pipeline, "WebRtcEndpoint"), pipeline);
    this.useDataChannels = options.useDataChannels;
    this.pc = new RTCPeerConnection(peerConfig(context.webrtc));
    this.keyframes = new KeyframeRequester(PLI_MIN_INTERVAL_MS, () => this.sendPli());
    this.pc.onIceCandidate.subscribe((candidate) => {
      if (!candidate) return;
      const init = candidate.toJSON();
      const text = init.candidate ?? "";
      this.localCandidates.push({
        candidate: text.startsWith("candidate:") ? text : `candidate:${text}`,
        sdpMid: init.sdpMid ?? undefined,
        sdpMLineIndex: init.sdpMLineIndex ?? undefined,
      });
      this.flushCandidates();
    });
    this.pc.iceGatheringStateChange.subscribe((state) => {
      if (state === "gathering") this.emitEvent("IceComponentStateChanged", { streamId: 0, componentId: 1, state: "GATHERING" });
      if (state === "complete") {
        this.gatheringDone = true;
        this.flushCandidates();
      }
    });
    this.pc.onTrack.subscribe((track) => this.adoptIncomingTrack(track));
    this.pc.connectionStateChange.subscribe((state) => this.connectionStateChanged(state));
    this.pc.iceConnectionStateChange.subscribe((state) => this.iceStateChanged(state));
    this.pc.onDataChannel.subscribe((channel) => this.adoptDataChannel(channel));
    this.rembTimer = setInterval(() => this.sendRemb(), REMB_INTERVAL_MS);
    this.rembTimer.unref();
  }

  override operations(): OperationTable {
    const table = {
      ...super.operations(),
      processOffer: operation("processOffer", z.object({ offer: z.string() }), ({ offer }) => this.processOffer(offer)),
      generateOffer: operation("generateOffer", offerOptionsSchema, ({ options }) =>
        this.generateOffer(options?.offerToReceiveAudio !== false, options?.offerToReceiveVideo !== false),
      ),
      processAnswer: operation("processAnswer", z.object({ answer: z.string() }), ({ answer }) => this.processAnswer(answer)),
      getLocalSessionDescriptor: operation("getLocalSessionDescriptor", noParams, () => {
        const sdp = this.pc.localDescription?.sdp;
        if (!sdp) throw new KurentoError("SDP_END_POINT_NO_LOCAL_SDP_ERROR", `${this.id} has no local SDP yet`);
        return this.outgoingSdp(sdp);
      }),
      getRemoteSessionDescriptor: operation("getRemoteSessionDescriptor", noParams, () => {
        const sdp = this.pc.remoteDescription?.sdp;
        if (!sdp) throw new KurentoError("SDP_END_POINT_NO_REMOTE_SDP_ERROR", `${this.id} has no remote SDP yet`);
        return sdp;
      }),
      gatherCandidates: operation("gatherCandidates", noParams, () => {
        this.gatherRequested = true;
        // KMS answers first and reports candidates as events afterwards.
        setImmediate(() => this.flushCandidates());
      }),
      addIceCandidate: operation("addIceCandidate", z.object({ candidate: iceCandidateSchema.loose() }), ({ candidate }) =>
        this.addIceCandidate(candidate),
      ),
      getMediaState: operation("getMediaState", noParams, () => this.mediaState),
      getConnectionState: operation("getConnectionState", noParams, () => this.mediaState),
      getIceConnectionState: operation("getIceConnectionState", noParams, () => [
        { __module__: "kurento", __type__: "IceConnection", streamId: "0", componentId: 1, state: iceComponentState(this.pc.iceConnectionState) ?? "DISCONNECTED" },
      ]),
      getICECandidatePairs: operation("getICECandidatePairs", noParams, () => this.candidatePairs()),
      getIceCandidatePairs: operation("getIceCandidatePairs", noParams, () => this.candidatePairs()),
      requestKeyframe: operation("requestKeyframe", noParams, () => this.requestKeyframe()),
      createDataChannel: operation(
        "createDataChannel",
        z.object({
          label: z.string().max(1000).nullish(),
          ordered: z.boolean().nullish(),
          maxPacketLifeTime: z.number().int().min(-1).nullish(),
          maxRetransmits: z.number().int().min(-1).nullish(),
          protocol: z.string().max(1000).nullish(),
        }),
        (params) => this.createDataChannel(params),
      ),
      closeDataChannel: operation("closeDataChannel", z.object({ channelId: z.number().int() }), ({ channelId }) => {
        const channel = [...this.dataChannels].find((candidate) => candidate.id === channelId);
        if (!channel) throw new KurentoError("MEDIA_OBJECT_ILLEGAL_PARAM_ERROR", `${this.id} has no data channel ${channelId}`);
        channel.close();
      }),
      ...this.bandwidthOperations(),
      ...this.networkOperations(),
    } satisfies OperationTable;
    return table;
  }

  acceptRtp(kind: MediaKind, rtp: ForwardedRtp): void {
    const transceiver = this.sendingTransceivers.get(kind);
    const codec = transceiver?.sender.codec;
    if (!transceiver || !codec || !sameCodec(codec.mimeType, rtp.mimeType)) return;
    const ssrc = rtp.packet.header.ssrc;
    const previous = this.lastSourceSsrc.get(kind);
    if (previous !== ssrc) {
      // A new stream (another source, or the publisher restarted): keep the peer's sequence numbers and timestamps continuous.
      if (previous !== undefined) transceiver.sender.replaceRTP(rtp.packet.header, true, kind === "video" ? 3000 : 960);
      this.lastSourceSsrc.set(kind, ssrc);
    }
    if (this.mediaState === "CONNECTED") this.flowOut.mark(mediaTypeOf(kind));
    transceiver.sender.sendRtp(rtp.packet).catch((error: unknown) => {
      this.context.log(`${this.id}: sending RTP failed: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  acceptData(label: string, message: string | Buffer): void {
    if (!this.useDataChannels || this.negotiation !== "negotiated" || !this.pc.sctpTransport) return;
    let channel = [...this.dataChannels].find((candidate) => candidate.label === label && candidate.readyState !== "closed" && candidate.readyState !== "closing");
    if (!channel) channel = this.createDataChannel({ label });
    if (channel.readyState === "open") {
      channel.send(message);
      return;
    }
    const queue = this.pendingData.get(channel) ?? [];
    if (queue.length < MAX_PENDING_DATA_MESSAGES) queue.push(message);
    this.pendingData.set(channel, queue);
  }

  requestKeyframe(): void {
    this.keyframes.request();
  }

  private async processOffer(offer: string): Promise<string> {
    if (this.negotiation !== "none") {
      throw new KurentoError("SDP_END_POINT_ALREADY_NEGOTIATED", `${this.id} has already negotiated (or generated an offer); create a new WebRtcEndpoint to renegotiate`);
    }
    assertParsableSdp(offer, "SDP offer");
    return this.exclusively(async () => {
      try {
        await this.pc.setRemoteDescription({ type: "offer", sdp: offer });
        // Remote-created transceivers default to recvonly; KMS answers sendrecv offers with sendrecv.
        for (const transceiver of this.pc.getTransceivers()) transceiver.setDirection("sendrecv");
        const answer = await this.pc.createAnswer();
        await this.pc.setLocalDescription(answer);
      } catch (error) {
        throw this.sdpFailure("SDP_END_POINT_PROCESS_OFFER_ERROR", "processing the SDP offer", error);
      }
      this.negotiation = "negotiated";
      this.negotiated();
      return this.outgoingSdp(this.pc.localDescription?.sdp ?? "");
    });
  }

  private async generateOffer(receiveAudio: boolean, receiveVideo: boolean): Promise<string> {
    if (this.negotiation !== "none") {
      throw new KurentoError("SDP_END_POINT_ALREADY_NEGOTIATED", `${this.id} has already negotiated (or generated an offer)`);
    }
    return this.exclusively(async () => {
      try {
        this.pc.addTransceiver("audio", { direction: receiveAudio ? "sendrecv" : "sendonly" });
        this.pc.addTransceiver("video", { direction: receiveVideo ? "sendrecv" : "sendonly" });
        // werift only offers an m=application section once a channel exists; a
        // pre-negotiated one stays invisible to the peer (no DCEP open message).
        if (this.useDataChannels) this.pc.createDataChannel("kurento-sctp", { negotiated: true, id: 1023 });
        const offer = await this.pc.createOffer();
        await this.pc.setLocalDescription(offer);
      } catch (error) {
        throw this.sdpFailure("SDP_END_POINT_GENERATE_OFFER_ERROR", "generating the SDP offer", error);
      }
      this.negotiation = "offer-generated";
      return this.outgoingSdp(this.pc.localDescription?.sdp ?? "");
    });
  }

  private async processAnswer(answer: string): Promise<string> {
    if (this.negotiation === "none") throw new KurentoError("SDP_END_POINT_NOT_OFFER_GENERATED", `${this.id} has not generated an offer; call generateOffer first`);
    if (this.negotiation === "negotiated") throw new KurentoError("SDP_END_POINT_ANSWER_ALREADY_PROCCESED", `${this.id} has already processed an answer`);
    assertParsableSdp(answer, "SDP answer");
    return this.exclusively(async () => {
      try {
        await this.pc.setRemoteDescription({ type: "answer", sdp: answer });
      } catch (error) {
        throw this.sdpFailure("SDP_END_POINT_PROCESS_ANSWER_ERROR", "processing the SDP answer", error);
      }
      this.negotiation = "negotiated";
      this.negotiated();
      return this.outgoingSdp(this.pc.localDescription?.sdp ?? "");
    });
  }

  /** Two SDP operations interleaving on one werift connection would corrupt its state; the second caller gets an error instead. */
  private async exclusively<T>(work: () => Promise<T>): Promise<T> {
    if (this.sdpBusy) throw new KurentoError("SDP_END_POINT_PROCESS_OFFER_ERROR", `${this.id} is already processing an SDP`);
    this.sdpBusy = true;
    try {
      const result = await work();
      if (this.released) throw new KurentoError("MEDIA_OBJECT_NOT_FOUND", `${this.id} was released during SDP negotiation`);
      return result;
    } finally {
      this.sdpBusy = false;
    }
  }

  private sdpFailure(type: "SDP_END_POINT_PROCESS_OFFER_ERROR" | "SDP_END_POINT_GENERATE_OFFER_ERROR" | "SDP_END_POINT_PROCESS_ANSWER_ERROR", what: string, error: unknown): KurentoError {
    if (error instanceof KurentoError) return error;
    if (this.released) return new KurentoError("MEDIA_OBJECT_NOT_FOUND", `${this.id} was released during SDP negotiation`);
    return new KurentoError(type, `Error ${what}: ${error instanceof Error ? error.message : String(error)}`);
  }

  private outgoingSdp(sdp: string): string {
    return this.gatherRequested ? sdp : withoutCandidates(sdp);
  }

  /** After negotiation: know which transceivers send, and listen to the peer's keyframe requests on them. */
  private negotiated(): void {
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
        transceiver.sender.onPictureLossIndication.subscribe(() => this.requestKeyframeFromSource());
        transceiver.sender.onRtcp.subscribe((packet) => {
          if (packet instanceof RtcpPayloadSpecificFeedback && packet.feedback.count === FIR_FORMAT) this.requestKeyframeFromSource();
        });
      }
    }
  }

  private flushCandidates(): void {
    if (!this.gatherRequested || this.released) return;
    while (this.emittedCandidates < this.localCandidates.length) {
      const candidate = this.localCandidates[this.emittedCandidates++];
      if (!candidate) continue;
      this.emitEvent("IceCandidateFound", { candidate: { __module__: "kurento", __type__: "IceCandidate", ...candidate } });
    }
    if (this.gatheringDone && !this.gatheringDoneEmitted) {
      this.gatheringDoneEmitted = true;
      this.emitEvent("IceGatheringDone");
    }
  }

  private async addIceCandidate(candidate: z.infer<typeof iceCandidateSchema>): Promise<void> {
    if (!acceptsRemoteCandidate(this.context.webrtc, candidate.candidate)) return;
    try {
      await this.pc.addIceCandidate({
        candidate: candidate.candidate,
        sdpMid: candidate.sdpMid ?? undefined,
        sdpMLineIndex: candidate.sdpMLineIndex ?? undefined,
      });
    } catch (error) {
      throw new KurentoError("ICE_ADD_CANDIDATE_ERROR", `Cannot add ICE candidate ${JSON.stringify(candidate.candidate.slice(0, 120))}: ${error instanceof Error ? error.message : String(error)}`);
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
    const mediaType = mediaTypeOf(kind);
    this.flowIn.mark(mediaType);
    if (this.sinksOf(mediaType).size === 0) return;
    this.deliverRtp(kind, { packet: forwardableCopy(packet), mimeType });
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
    if (!transceiver || ssrc === undefined || this.released) return;
    transceiver.receiver.sendRtcpPLI(ssrc).catch(() => {});
  }

  /**
   * KMS-like REMB: the default cap, lowered by this endpoint's
   * maxVideoRecvBandwidth and by maxVideoSendBandwidth of every WebRtcEndpoint
   * downstream (that is the only way a forwarding server can honour a send
   * limit), raised to minVideoRecvBandwidth.
   */
  private sendRemb(): void {
    const transceiver = this.videoReceiver;
    const ssrc = this.publisherVideoSsrc;
    if (!transceiver || ssrc === undefined || this.mediaState !== "CONNECTED") return;
    let kbps = this.context.webrtc.rembKbps;
    const maxRecv = this.bandwidth.get("maxVideoRecvBandwidth") ?? 0;
    if (maxRecv > 0) kbps = Math.min(kbps, maxRecv);
    const downstream = this.downstreamSendLimitKbps();
    if (downstream !== undefined) kbps = Math.min(kbps, downstream);
    kbps = Math.max(kbps, this.bandwidth.get("minVideoRecvBandwidth") ?? 0);
    transceiver.dtlsTransport.sendRtcp([rembPacket(transceiver.receiver.rtcpSsrc, [ssrc], kbps * 1000)]).catch(() => {});
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
      const pair = this.pc.iceTransports[0]?.getSelectedCandidatePair();
      if (pair) {
        this.emitEvent("NewCandidatePairSelected", {
          candidatePair: {
            __module__: "kurento",
            __type__: "IceCandidatePair",
            streamID: "0",
            componentID: 1,
            localCandidate: pair.local.candidate,
            remoteCandidate: pair.remote.candidate,
          },
        });
      }
      // This peer can only show video from a keyframe sent after its DTLS came up.
      this.requestKeyframeFromSource();
    } else if (state === "disconnected" || state === "failed" || state === "closed") {
      const wasConnected = this.mediaState === "CONNECTED";
      this.setMediaState("DISCONNECTED");
      if (wasConnected && state !== "disconnected") this.emitEvent("MediaSessionTerminated");
    }
  }

  private setMediaState(next: MediaState): void {
    if (next === this.mediaState) return;
    const previous = this.mediaState;
    this.mediaState = next;
    this.emitEvent("MediaStateChanged", { oldState: previous, newState: next });
    this.emitEvent("ConnectionStateChanged", { oldState: previous, newState: next });
  }

  private iceStateChanged(state: string): void {
    const mapped = iceComponentState(state);
    if (mapped) this.emitEvent("IceComponentStateChanged", { streamId: 0, componentId: 1, state: mapped });
  }

  private candidatePairs() {
    const pair = this.pc.iceTransports[0]?.getSelectedCandidatePair();
    if (!pair) return [];
    return [{ __module__: "kurento", __type__: "IceCandidatePair", streamID: "0", componentID: 1, localCandidate: pair.local.candidate, remoteCandidate: pair.remote.candidate }];
  }

  private createDataChannel(params: { label?: string | null; ordered?: boolean | null; maxPacketLifeTime?: number | null; maxRetransmits?: number | null; protocol?: string | null }): RTCDataChannel {
    if (!this.useDataChannels) {
      throw new KurentoError("MEDIA_OBJECT_ILLEGAL_PARAM_ERROR", `${this.id} was created without useDataChannels`);
    }
    const channel = this.pc.createDataChannel(params.label ?? "", {
      ordered: params.ordered ?? true,
      ...(params.maxPacketLifeTime != null && params.maxPacketLifeTime >= 0 ? { maxPacketLifeTime: params.maxPacketLifeTime } : {}),
      ...(params.maxRetransmits != null && params.maxRetransmits >= 0 ? { maxRetransmits: params.maxRetransmits } : {}),
      protocol: params.protocol ?? "",
    });
    this.adoptDataChannel(channel);
    return channel;
  }

  private adoptDataChannel(channel: RTCDataChannel): void {
    if (!this.useDataChannels) {
      // KMS refuses data channels on endpoints created without them.
      channel.close();
      return;
    }
    this.dataChannels.add(channel);
    channel.onMessage.subscribe((message) => this.deliverData(channel.label, message));
    const opened = () => {
      this.emitEvent("DataChannelOpened", { channelId: channel.id });
      for (const message of this.pendingData.get(channel) ?? []) channel.send(message);
      this.pendingData.delete(channel);
    };
    if (channel.readyState === "open") opened();
    channel.stateChanged.subscribe((state) => {
      if (state === "open") opened();
      if (state === "closed") {
        this.dataChannels.delete(channel);
        this.pendingData.delete(channel);
        this.emitEvent("DataChannelClosed", { channelId: channel.id });
      }
    });
  }

  private bandwidthOperations(): OperationTable {
    const operations: Record<string, Operation> = {};
    for (const name of BANDWIDTH_PROPERTIES) {
      const suffix = capitalised(name);
      operations[`get${suffix}`] = operation(`get${suffix}`, noParams, () => this.bandwidth.get(name) ?? 0);
      operations[`set${suffix}`] = operation(`set${suffix}`, z.object({ [name]: z.number().int().min(0).max(10_000_000) }), (params) => {
        this.bandwidth.set(name, Number(params[name]));
      });
    }
    return operations;
  }

  private networkOperations(): OperationTable {
    const operations: Record<string, Operation> = {};
    for (const [name, schema] of Object.entries(NETWORK_PROPERTIES) as Array<[NetworkProperty, z.ZodType]>) {
      const suffix = capitalised(name);
      operations[`get${suffix}`] = operation(`get${suffix}`, noParams, () => this.network.get(name) ?? (schema instanceof z.ZodBoolean ? false : ""));
      operations[`set${suffix}`] = operation(`set${suffix}`, z.object({ [name]: schema }), (params) => {
        this.network.set(name, params[name]);
      });
    }
    return operations;
  }

  protected override async dispose(): Promise<void> {
    clearInterval(this.rembTimer);
    this.keyframes.dispose();
    super.dispose();
    await this.pc.close();
  }
}

function iceComponentState(state: string): string | undefined {
  switch (state) {
    case "checking":
      return "CONNECTING";
    case "connected":
      return "CONNECTED";
    case "completed":
      return "READY";
    case "failed":
      return "FAILED";
    case "disconnected":
    case "closed":
      return "DISCONNECTED";
    default:
      return undefined;
  }
}
