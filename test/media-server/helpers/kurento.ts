import { createRequire } from "node:module";

// The real, unmodified kurento-client package (CommonJS, untyped); these
// interfaces describe only what the tests call.

export interface KurentoMediaObject {
  readonly id: string;
  release(): Promise<void>;
  on(event: string, listener: (event: Record<string, unknown>) => void): this;
  removeAllListeners(event?: string): this;
}

export interface KurentoMediaElement extends KurentoMediaObject {
  connect(sink: KurentoMediaElement, mediaType?: "AUDIO" | "VIDEO" | "DATA"): Promise<void>;
  disconnect(sink: KurentoMediaElement, mediaType?: "AUDIO" | "VIDEO" | "DATA"): Promise<void>;
  getSourceConnections(mediaType?: string): Promise<Array<Record<string, unknown>>>;
  getSinkConnections(mediaType?: string): Promise<Array<Record<string, unknown>>>;
}

export interface KurentoWebRtcEndpoint extends KurentoMediaElement {
  processOffer(offer: string): Promise<string>;
  generateOffer(): Promise<string>;
  processAnswer(answer: string): Promise<string>;
  gatherCandidates(): Promise<void>;
  addIceCandidate(candidate: unknown): Promise<void>;
  getMediaState(): Promise<string>;
  getConnectionState(): Promise<string>;
  setMaxVideoSendBandwidth(kbps: number): Promise<void>;
  getMaxVideoSendBandwidth(): Promise<number>;
  setMaxVideoRecvBandwidth(kbps: number): Promise<void>;
  setMinVideoSendBandwidth(kbps: number): Promise<void>;
  getStats(mediaType?: string): Promise<unknown>;
}

export interface KurentoPipeline extends KurentoMediaObject {
  create(type: "WebRtcEndpoint", params?: { useDataChannels?: boolean }): Promise<KurentoWebRtcEndpoint>;
  create(type: string, params?: Record<string, unknown>): Promise<KurentoMediaElement>;
}

export interface KurentoClient {
  readonly sessionId: string;
  create(type: "MediaPipeline"): Promise<KurentoPipeline>;
  getServerManager(): Promise<
    KurentoMediaObject & { getInfo(): Promise<Record<string, unknown>>; getPipelines(): Promise<unknown[]> }
  >;
  close(): void;
  on(event: string, listener: (...args: unknown[]) => void): void;
}

interface KurentoModule {
  (url: string, options?: Record<string, unknown>): KurentoClient & PromiseLike<KurentoClient>;
  getComplexType(
    name: "IceCandidate",
  ): (value: { candidate: string; sdpMid?: string | null; sdpMLineIndex?: number | null }) => unknown;
}

const require = createRequire(import.meta.url);

/**
 * Loaded as any application would: the package.json `overrides` give
 * kurento-client our ws@8 reconnect-ws (packages/reconnect-ws), the same
 * transport the bridge uses.
 */
export const kurento = require("kurento-client") as KurentoModule;

/** Connects like an application would; a refused connection rejects after `failAfter` retries. */
export async function connectKurento(url: string, options: Record<string, unknown> = {}): Promise<KurentoClient> {
  const client = kurento(url, { failAfter: 3, ...options });
  await client;
  return client;
}

export function iceCandidate(value: {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
}): unknown {
  return kurento.getComplexType("IceCandidate")(value);
}
