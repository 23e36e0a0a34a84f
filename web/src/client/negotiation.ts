/**
 * One WebRTC negotiation with the server: a fresh RTCPeerConnection, the SDP
 * offer sent as `publishVideo` / `receiveVideoFrom`, the answer applied, and
 * trickle ICE both ways (local candidates go out once the offer is on the
 * wire; the server's wait until the answer is applied). Closing the session
 * makes everything it still had in flight moot (`cancelled`).
 */
import { cancelled } from "./errors.ts";

/**
 * RID simulcast layers, lowest first: the server ranks layers in the offer's
 * order. A quarter, a half and the full resolution.
 */
export const SIMULCAST_LAYERS: RTCRtpEncodingParameters[] = [
  { rid: "l", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "m", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "h", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

/** Two layers, half and full resolution, for a mid-sized capture. */
const TWO_LAYERS: RTCRtpEncodingParameters[] = [
  { rid: "l", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "h", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

/**
 * The layers for a capture of this size, or null for one plain stream.
 * Chromium sends only as many layers as the capture's size allows (3 from
 * 960x540, 2 from 480x270, 1 below) and keeps the lowest ones: three layers
 * offered for a 320x240 camera would send its 80x60 quarter alone, the worst
 * picture for everyone. So the offer asks for what will be sent. An unknown
 * size gets the three layers.
 */
export function simulcastLayersFor(
  width: number | undefined,
  height: number | undefined,
): RTCRtpEncodingParameters[] | null {
  if (width === undefined || height === undefined) return SIMULCAST_LAYERS;
  const pixels = width * height;
  if (pixels >= 960 * 540) return SIMULCAST_LAYERS;
  if (pixels >= 480 * 270) return TWO_LAYERS;
  return null;
}

export interface NegotiationSpec {
  readonly rtcConfiguration: RTCConfiguration;
  /** The stream's id (`alice_webcam`), for messages. */
  readonly streamId: string;
  /** What is being negotiated, for messages: `publishing`, `subscribing to bob_webcam`. */
  readonly what: string;
  /** Local media to send (publishing), or null (receiving). */
  readonly sendMedia: MediaStream | null;
  /** Publishing: also receive (the server's loopback). */
  readonly loopback: boolean;
  /** Receiving: which kinds. */
  readonly recvAudio: boolean;
  readonly recvVideo: boolean;
  /** Publishing: send the video track in simulcast layers (the room's media server forwards one per subscriber). */
  readonly simulcast?: boolean;
  /** Publishing: a DataChannel with this label, or null. */
  readonly dataChannelLabel: string | null;
  /** Sends the offer (`publishVideo` / `receiveVideoFrom`); resolves with the server's answer. */
  offer(sdpOffer: string): Promise<{ sdpAnswer: string }>;
  sendCandidate(candidate: RTCIceCandidateInit): void;
  /** The answer came after the session was closed: undo what the server built, if nobody wants it. */
  staleAnswer(): void;
  onTrack(track: MediaStreamTrack): void;
  onIceState(state: RTCIceConnectionState): void;
  /**
   * Gathering ended without a single local candidate: ICE can never connect (typically
   * `iceTransportPolicy: "relay"` with a TURN server that refused the credentials, or none).
   */
  onNoCandidates(): void;
  onDataChannel(channel: RTCDataChannel): void;
}

export class PeerSession {
  readonly pc: RTCPeerConnection;
  readonly #spec: NegotiationSpec;
  #closed = false;
  /** The offer is on the wire: local candidates may follow it. */
  #signalled = false;
  #localCandidates: RTCIceCandidateInit[] = [];
  #gathered = 0;
  #remoteDescriptionSet = false;
  #remoteCandidates: RTCIceCandidateInit[] = [];

  constructor(Peer: typeof RTCPeerConnection, spec: NegotiationSpec) {
    this.#spec = spec;
    const pc = new Peer(spec.rtcConfiguration);
    this.pc = pc;
    pc.onicecandidate = (event) => {
      if (this.#closed || !event.candidate || !event.candidate.candidate) return;
      const candidate = event.candidate.toJSON();
      this.#gathered += 1;
      if (this.#signalled) spec.sendCandidate(candidate);
      else this.#localCandidates.push(candidate);
    };
    pc.oniceconnectionstatechange = () => {
      if (!this.#closed) spec.onIceState(pc.iceConnectionState);
    };
    pc.onicegatheringstatechange = () => {
      if (!this.#closed && pc.iceGatheringState === "complete" && this.#gathered === 0) spec.onNoCandidates();
    };
    pc.ontrack = (event) => {
      if (!this.#closed) spec.onTrack(event.track);
    };
    const media = spec.sendMedia;
    if (media) {
      const direction: RTCRtpTransceiverDirection = spec.loopback ? "sendrecv" : "sendonly";
      for (const track of media.getTracks()) {
        const layered = track.kind === "video" && spec.simulcast === true;
        const size: MediaTrackSettings = (layered && track.getSettings?.()) || {};
        const layers = layered ? simulcastLayersFor(size.width, size.height) : null;
        pc.addTransceiver(track, { direction, streams: [media], ...(layers ? { sendEncodings: layers } : {}) });
      }
      if (spec.dataChannelLabel !== null) spec.onDataChannel(pc.createDataChannel(spec.dataChannelLabel));
    } else {
      if (spec.recvAudio) pc.addTransceiver("audio", { direction: "recvonly" });
      if (spec.recvVideo) pc.addTransceiver("video", { direction: "recvonly" });
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Offer, answer, queued candidates; rejects with `cancelled` when the session is closed meanwhile. */
  async run(): Promise<void> {
    const { pc } = this;
    const spec = this.#spec;
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this.#check();
    const answered = spec.offer(offer.sdp ?? "");
    // The request is on the wire: candidates may follow it now (same socket, in order).
    this.#signalled = true;
    for (const candidate of this.#localCandidates.splice(0)) spec.sendCandidate(candidate);
    const { sdpAnswer } = await answered;
    if (this.#closed) {
      spec.staleAnswer();
      throw cancelled(spec.what);
    }
    await pc.setRemoteDescription({ type: "answer", sdp: sdpAnswer });
    this.#check();
    this.#remoteDescriptionSet = true;
    for (const candidate of this.#remoteCandidates.splice(0)) await this.#addRemote(candidate);
    this.#check();
  }

  /** A candidate the server gathered for this endpoint. */
  addRemoteCandidate(candidate: RTCIceCandidateInit): void {
    if (this.#closed) return;
    if (!this.#remoteDescriptionSet) {
      this.#remoteCandidates.push(candidate);
      return;
    }
    void this.#addRemote(candidate);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#localCandidates = [];
    this.#remoteCandidates = [];
    const { pc } = this;
    pc.onicecandidate = null;
    pc.ontrack = null;
    pc.oniceconnectionstatechange = null;
    pc.onicegatheringstatechange = null;
    pc.close();
  }

  #check(): void {
    if (this.#closed) throw cancelled(this.#spec.what);
  }

  async #addRemote(candidate: RTCIceCandidateInit): Promise<void> {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (error) {
      console.warn(`kurento-room: ${this.#spec.streamId}: ICE candidate refused`, error);
    }
  }
}
