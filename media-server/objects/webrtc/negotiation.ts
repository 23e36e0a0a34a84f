import type { RTCPeerConnection } from "werift";
import type { z } from "zod";
import { KurentoError } from "../../errors.ts";
import type { iceCandidateSchema } from "../../protocol.ts";
import { assertParsableSdp, withoutCandidates } from "../../sdp.ts";
import { acceptsRemoteCandidate } from "../../webrtc-config.ts";
import type { MediaServerContext } from "../media-object.ts";

type NegotiationState = "none" | "offer-generated" | "negotiated";
type SdpFailure =
  | "SDP_END_POINT_PROCESS_OFFER_ERROR"
  | "SDP_END_POINT_GENERATE_OFFER_ERROR"
  | "SDP_END_POINT_PROCESS_ANSWER_ERROR";
export type IceCandidate = z.infer<typeof iceCandidateSchema>;

/** What negotiation needs from its endpoint. */
export interface NegotiationHost {
  readonly id: string;
  readonly context: MediaServerContext;
  readonly released: boolean;
  readonly useDataChannels: boolean;
  emitEvent(type: string, fields?: Record<string, unknown>): void;
}

interface LocalCandidate {
  candidate: string;
  sdpMid: string | undefined;
  sdpMLineIndex: number | undefined;
}

/**
 * SDP offer/answer and trickle ICE of one WebRtcEndpoint, as KMS does them:
 * one negotiation per endpoint, SDPs handed out without candidates, and
 * candidates reported as IceCandidateFound events once gatherCandidates is
 * called.
 */
export class Negotiation {
  private readonly pc: RTCPeerConnection;
  private readonly host: NegotiationHost;
  /** Called once an offer/answer exchange completes, before its SDP is returned. */
  private readonly onNegotiated: () => void;
  private negotiation: NegotiationState = "none";
  private sdpBusy = false;
  private gatherRequested = false;
  /** Whether this endpoint was given a STUN server of its own (setStunServerAddress). */
  private hasStunServer = false;
  private gatheringDone = false;
  private gatheringDoneEmitted = false;
  private readonly localCandidates: LocalCandidate[] = [];
  private emittedCandidates = 0;

  constructor(pc: RTCPeerConnection, host: NegotiationHost, onNegotiated: () => void) {
    this.pc = pc;
    this.host = host;
    this.onNegotiated = onNegotiated;
    pc.onIceCandidate.subscribe((candidate) => {
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
    pc.iceGatheringStateChange.subscribe((state) => {
      if (state === "gathering")
        host.emitEvent("IceComponentStateChanged", { streamId: 0, componentId: 1, state: "GATHERING" });
      if (state === "complete") {
        this.gatheringDone = true;
        this.flushCandidates();
      }
    });
    pc.iceConnectionStateChange.subscribe((state) => {
      const mapped = iceComponentState(state);
      if (mapped) host.emitEvent("IceComponentStateChanged", { streamId: 0, componentId: 1, state: mapped });
    });
  }

  get negotiated(): boolean {
    return this.negotiation === "negotiated";
  }

  async processOffer(offer: string): Promise<string> {
    if (this.negotiation !== "none") {
      throw new KurentoError(
        "SDP_END_POINT_ALREADY_NEGOTIATED",
        `${this.host.id} has already negotiated (or generated an offer); create a new WebRtcEndpoint to renegotiate`,
      );
    }
    assertParsableSdp(offer, "SDP offer");
    return this.exclusively(async () => {
      try {
        await this.pc.setRemoteDescription({ type: "offer", sdp: offer });
        // Remote-created transceivers default to recvonly; KMS answers sendrecv offers with sendrecv.
        for (const transceiver of this.pc.getTransceivers()) transceiver.setDirection("sendrecv");
        const answer = await this.pc.createAnswer();
        this.withoutFallbackStun();
        await this.pc.setLocalDescription(answer);
      } catch (error) {
        throw this.sdpFailure("SDP_END_POINT_PROCESS_OFFER_ERROR", "processing the SDP offer", error);
      }
      this.negotiation = "negotiated";
      this.onNegotiated();
      return this.outgoingSdp(this.pc.localDescription?.sdp ?? "");
    });
  }

  async generateOffer(receiveAudio: boolean, receiveVideo: boolean): Promise<string> {
    if (this.negotiation !== "none") {
      throw new KurentoError(
        "SDP_END_POINT_ALREADY_NEGOTIATED",
        `${this.host.id} has already negotiated (or generated an offer)`,
      );
    }
    return this.exclusively(async () => {
      try {
        this.pc.addTransceiver("audio", { direction: receiveAudio ? "sendrecv" : "sendonly" });
        this.pc.addTransceiver("video", { direction: receiveVideo ? "sendrecv" : "sendonly" });
        // werift only offers an m=application section once a channel exists; a
        // pre-negotiated one stays invisible to the peer (no DCEP open message).
        if (this.host.useDataChannels) this.pc.createDataChannel("kurento-sctp", { negotiated: true, id: 1023 });
        const offer = await this.pc.createOffer();
        this.withoutFallbackStun();
        await this.pc.setLocalDescription(offer);
      } catch (error) {
        throw this.sdpFailure("SDP_END_POINT_GENERATE_OFFER_ERROR", "generating the SDP offer", error);
      }
      this.negotiation = "offer-generated";
      return this.outgoingSdp(this.pc.localDescription?.sdp ?? "");
    });
  }

  async processAnswer(answer: string): Promise<string> {
    if (this.negotiation === "none") {
      throw new KurentoError(
        "SDP_END_POINT_NOT_OFFER_GENERATED",
        `${this.host.id} has not generated an offer; call generateOffer first`,
      );
    }
    if (this.negotiation === "negotiated") {
      throw new KurentoError(
        "SDP_END_POINT_ANSWER_ALREADY_PROCCESED",
        `${this.host.id} has already processed an answer`,
      );
    }
    assertParsableSdp(answer, "SDP answer");
    return this.exclusively(async () => {
      try {
        await this.pc.setRemoteDescription({ type: "answer", sdp: answer });
      } catch (error) {
        throw this.sdpFailure("SDP_END_POINT_PROCESS_ANSWER_ERROR", "processing the SDP answer", error);
      }
      this.negotiation = "negotiated";
      this.onNegotiated();
      return this.outgoingSdp(this.pc.localDescription?.sdp ?? "");
    });
  }

  localDescriptor(): string {
    const sdp = this.pc.localDescription?.sdp;
    if (!sdp) throw new KurentoError("SDP_END_POINT_NO_LOCAL_SDP_ERROR", `${this.host.id} has no local SDP yet`);
    return this.outgoingSdp(sdp);
  }

  remoteDescriptor(): string {
    const sdp = this.pc.remoteDescription?.sdp;
    if (!sdp) throw new KurentoError("SDP_END_POINT_NO_REMOTE_SDP_ERROR", `${this.host.id} has no remote SDP yet`);
    return sdp;
  }

  /**
   * The STUN/TURN servers this endpoint gathers with (KMS's stunServerAddress,
   * stunServerPort, turnUrl). As on KMS they count for a gathering not yet
   * started: werift applies them to transports still in gathering state
   * "new", and to those the next SDP creates.
   */
  setIceServers(iceServers: Array<{ urls: string; username?: string; credential?: string }>): void {
    this.hasStunServer = iceServers.some((server) => /^stuns?:/.test(server.urls));
    this.pc.setConfiguration({ iceServers });
  }

  /**
   * werift falls back to a public STUN server (stun.l.google.com:19302) when
   * none is configured, and setLocalDescription waits for that query (up to
   * 5 s when it goes unanswered): every publish and subscribe paid for it, and
   * the media server talked to Google unasked. KMS asks no STUN server unless
   * one is configured; neither does this endpoint.
   */
  private withoutFallbackStun(): void {
    if (this.hasStunServer) return;
    for (const transport of this.pc.iceTransports) transport.connection.stunServer = undefined;
  }

  gatherCandidates(): void {
    this.gatherRequested = true;
    // KMS answers first and reports candidates as events afterwards.
    setImmediate(() => this.flushCandidates());
  }

  async addIceCandidate(candidate: IceCandidate): Promise<void> {
    if (!acceptsRemoteCandidate(this.host.context.webrtc, candidate.candidate)) return;
    try {
      await this.pc.addIceCandidate({
        candidate: candidate.candidate,
        sdpMid: candidate.sdpMid ?? undefined,
        sdpMLineIndex: candidate.sdpMLineIndex ?? undefined,
      });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new KurentoError(
        "ICE_ADD_CANDIDATE_ERROR",
        `Cannot add ICE candidate ${JSON.stringify(candidate.candidate.slice(0, 120))}: ${reason}`,
      );
    }
  }

  /** `getIceConnectionState`: the one ICE component (everything is bundled). */
  iceConnections() {
    const state = iceComponentState(this.pc.iceConnectionState) ?? "DISCONNECTED";
    return [{ __module__: "kurento", __type__: "IceConnection", streamId: "0", componentId: 1, state }];
  }

  /** The selected pair as a kurento IceCandidatePair, if ICE has chosen one. */
  selectedPair() {
    const pair = this.pc.iceTransports[0]?.getSelectedCandidatePair();
    if (!pair) return undefined;
    return {
      __module__: "kurento",
      __type__: "IceCandidatePair",
      streamID: "0",
      componentID: 1,
      localCandidate: pair.local.candidate,
      remoteCandidate: pair.remote.candidate,
    };
  }

  candidatePairs() {
    const pair = this.selectedPair();
    return pair ? [pair] : [];
  }

  /**
   * Two SDP operations interleaving on one werift connection would corrupt
   * its state; the second caller gets an error instead.
   */
  private async exclusively<T>(work: () => Promise<T>): Promise<T> {
    if (this.sdpBusy)
      throw new KurentoError("SDP_END_POINT_PROCESS_OFFER_ERROR", `${this.host.id} is already processing an SDP`);
    this.sdpBusy = true;
    try {
      const result = await work();
      if (this.host.released)
        throw new KurentoError("MEDIA_OBJECT_NOT_FOUND", `${this.host.id} was released during SDP negotiation`);
      return result;
    } finally {
      this.sdpBusy = false;
    }
  }

  private sdpFailure(type: SdpFailure, what: string, error: unknown): KurentoError {
    if (error instanceof KurentoError) return error;
    if (this.host.released)
      return new KurentoError("MEDIA_OBJECT_NOT_FOUND", `${this.host.id} was released during SDP negotiation`);
    return new KurentoError(type, `Error ${what}: ${error instanceof Error ? error.message : String(error)}`);
  }

  private outgoingSdp(sdp: string): string {
    return this.gatherRequested ? sdp : withoutCandidates(sdp);
  }

  private flushCandidates(): void {
    if (!this.gatherRequested || this.host.released) return;
    while (this.emittedCandidates < this.localCandidates.length) {
      const candidate = this.localCandidates[this.emittedCandidates++];
      if (!candidate) continue;
      this.host.emitEvent("IceCandidateFound", {
        candidate: { __module__: "kurento", __type__: "IceCandidate", ...candidate },
      });
    }
    if (this.gatheringDone && !this.gatheringDoneEmitted) {
      this.gatheringDoneEmitted = true;
      this.host.emitEvent("IceGatheringDone");
    }
  }
}

/** werift's ICE connection states as KMS's IceComponentState names. */
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
