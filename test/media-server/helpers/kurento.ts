import { existsSync } from "node:fs";
import { createRequire, Module } from "node:module";
import path from "node:path";

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
  getServerManager(): Promise<KurentoMediaObject & { getInfo(): Promise<Record<string, unknown>>; getPipelines(): Promise<unknown[]> }>;
  close(): void;
  on(event: string, listener: (...args: unknown[]) => void): void;
  /** The reconnect-ws emitter; see connectKurento. */
  readonly _re: { on(event: "error", listener: (error: unknown) => void): void };
}

interface KurentoModule {
  (url: string, options?: Record<string, unknown>): KurentoClient & PromiseLike<KurentoClient>;
  getComplexType(name: "IceCandidate"): (value: { candidate: string; sdpMid?: string | null; sdpMLineIndex?: number | null }) => unknown;
}

const require = createRequire(import.meta.url);

/**
 * With the reconnect-ws 0.1.0 override, kurento-client talks through ws@0.7.2
 * (via websocket-stream), which loads `bufferutil` and `utf-8-validate` when
 * present and expects their 1.x API. This install has 4.x/6.x at the top level
 * (for ws@8), so every masked frame it sends dies with "Cannot read properties
 * of undefined (reading 'mask')". Pinning ws@0.7.2's own pure-JS fallbacks in
 * the require cache, before kurento-client loads, avoids that.
 */
function pinLegacyWsFallbacks(): void {
  let wsDir: string;
  try {
    const reconnectWs = path.dirname(require.resolve("reconnect-ws/package.json"));
    const websocketStream = path.dirname(require.resolve("websocket-stream/package.json", { paths: [reconnectWs] }));
    wsDir = path.dirname(require.resolve("ws/package.json", { paths: [websocketStream] }));
  } catch {
    return;
  }
  for (const [helper, fallback] of [["BufferUtil.js", "BufferUtil.fallback.js"], ["Validation.js", "Validation.fallback.js"]] as const) {
    const target = path.join(wsDir, "lib", helper);
    const fallbackPath = path.join(wsDir, "lib", fallback);
    if (!existsSync(fallbackPath) || require.cache[target]) continue;
    const pinned = new Module(target);
    pinned.filename = target;
    pinned.loaded = true;
    pinned.exports = require(fallbackPath);
    require.cache[target] = pinned;
  }
}

pinLegacyWsFallbacks();
export const kurento = require("kurento-client") as KurentoModule;

/**
 * Connects like an application would. The `_re` error listener is needed with
 * the reconnect-ws 0.1.0 override: without one, a refused connection is an
 * unhandled 'error' that kills the process.
 */
export async function connectKurento(url: string, options: Record<string, unknown> = {}): Promise<KurentoClient> {
  const client = kurento(url, { failAfter: 3, ...options });
  client._re.on("error", () => {});
  await client;
  return client;
}

export function iceCandidate(value: { candidate: string; sdpMid?: string | null; sdpMLineIndex?: number | null }): unknown {
  return kurento.getComplexType("IceCandidate")(value);
}
