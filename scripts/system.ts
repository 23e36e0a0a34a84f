/**
 * The whole system on one machine, as `npm start` runs it and as the
 * integration and browser tests use it: the embedded media server (unless
 * real KMS URIs are given), the worker under `wrangler dev`, and a bridge that
 * dials into the worker. Ready means the worker's /health counts the bridge.
 */
import { randomBytes } from "node:crypto";
import { startMediaServer, type MediaServerHandle, type WebRtcSettings } from "../media-server/index.ts";
import { loadConfig, startBridge, type BridgeHandle } from "../bridge/main.ts";
import { startWranglerDev, type WranglerDev } from "./wrangler-dev.ts";

export interface SystemOptions {
  /** The worker's port; a free one when omitted. */
  port?: number;
  /** Extra worker vars (`--var`). */
  vars?: Record<string, string>;
  /** Real media servers (`ws://host:8888/kurento`, …); the embedded one when omitted. */
  kmsUris?: string[];
  /** Port of the embedded media server; a free one when omitted. */
  kmsPort?: number;
  /**
   * Shared token of the media server (KMS_TOKEN): the embedded one requires it and the bridge sends it.
   * `npm start` passes a random one per run; none when omitted.
   */
  kmsToken?: string;
  /** WebRTC settings of the embedded media server (tests use `{loopbackOnly: true}`). */
  mediaServerWebrtc?: Partial<WebRtcSettings>;
  /** Extra bridge environment (e.g. KMS_LIMIT, REQUEST_TIMEOUT_MS, LOG_LEVEL). */
  bridgeEnv?: Record<string, string>;
  /** Durable Object storage directory; a fresh temp dir when omitted. */
  persistTo?: string;
  inheritOutput?: boolean;
  readyTimeoutMs?: number;
}

export interface System {
  readonly url: string;
  readonly worker: WranglerDev;
  readonly bridge: BridgeHandle;
  /** The embedded media server, or null when real KMS URIs were given. */
  readonly mediaServer: MediaServerHandle | null;
  readonly bridgeSecret: string;
  stop(): Promise<void>;
}

export async function startSystem(options: SystemOptions = {}): Promise<System> {
  const bridgeSecret = process.env.BRIDGE_SECRET ?? randomBytes(32).toString("hex");
  const stops: Array<() => Promise<void>> = [];
  const stop = async (): Promise<void> => {
    for (const step of stops.splice(0).reverse()) {
      try {
        await step();
      } catch {
        // Keep stopping the rest.
      }
    }
  };
  try {
    let mediaServer: MediaServerHandle | null = null;
    let kmsUris = options.kmsUris;
    if (!kmsUris || kmsUris.length === 0) {
      mediaServer = await startMediaServer({
        port: options.kmsPort ?? 0,
        ...(options.mediaServerWebrtc ? { webrtc: options.mediaServerWebrtc } : {}),
        ...(options.kmsToken ? { token: options.kmsToken } : {}),
        log: options.inheritOutput ? undefined : () => undefined,
      });
      const started = mediaServer;
      stops.push(() => started.close());
      kmsUris = [mediaServer.url];
    }

    const worker = await startWranglerDev({
      ...(options.port === undefined ? {} : { port: options.port }),
      ...(options.persistTo === undefined ? {} : { persistTo: options.persistTo }),
      vars: { BRIDGE_SECRET: bridgeSecret, ...options.vars },
      inheritOutput: options.inheritOutput ?? false,
    });
    stops.push(() => worker.stop());

    const config = loadConfig({
      WORKER_URL: worker.url,
      BRIDGE_SECRET: bridgeSecret,
      BRIDGE_ID: "local-bridge",
      KMS_URIS: kmsUris.join(","),
      BRIDGE_HTTP_PORT: "0",
      LOG_LEVEL: options.inheritOutput ? "info" : "error",
      ...(options.kmsToken ? { KMS_TOKEN: options.kmsToken } : {}),
      ...options.bridgeEnv,
    });
    const bridge = await startBridge(config);
    stops.push(() => bridge.stop());

    await waitForBridges(worker.url, 1, options.readyTimeoutMs ?? 60_000);
    return { url: worker.url, worker, bridge, mediaServer, bridgeSecret, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Polls the worker's /health until it counts `count` connected bridges. */
export async function waitForBridges(url: string, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      last = await response.text();
      const body = JSON.parse(last) as { bridges?: number };
      if ((body.bridges ?? 0) >= count) return;
    } catch {
      // Not ready yet.
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no media bridge registered with ${url} within ${timeoutMs} ms (last /health: ${last})`);
}
