/**
 * The whole system on one machine, as `npm start` runs it and as the
 * integration and browser tests use it: a media server, the worker under
 * `wrangler dev`, and a bridge that dials into the worker. Ready means the
 * worker's /health counts the bridge.
 *
 * The media back end is the embedded media server, or a real Kurento Media
 * Server started from `KMS_HOME` (`mediaBackend: "kms"`, or the environment's
 * `MEDIA_BACKEND=kms`: the `*-kms` test projects set it), or KMS URIs given
 * outright (`kmsUris`: servers someone else runs).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startMediaServer, type MediaServerHandle, type WebRtcSettings } from "../media-server/index.ts";
import { loadConfig, startBridge, type BridgeHandle } from "../bridge/main.ts";
import { type KmsHandle, kmsObjectCount, startKms } from "./kms.ts";
import { startWranglerDev, type WranglerDev } from "./wrangler-dev.ts";

export type MediaBackend = "embedded" | "kms";

/** `MEDIA_BACKEND` (`embedded`, the default, or `kms`); anything else is an error, never a silent default. */
export function mediaBackendFromEnv(env: NodeJS.ProcessEnv = process.env): MediaBackend {
  const raw = env.MEDIA_BACKEND?.trim() || "embedded";
  if (raw !== "embedded" && raw !== "kms") throw new Error(`MEDIA_BACKEND must be 'embedded' or 'kms', got '${raw}'`);
  return raw;
}

export interface SystemOptions {
  /** The worker's port; a free one when omitted. */
  port?: number;
  /** Extra worker vars (`--var`). */
  vars?: Record<string, string>;
  /** Real media servers someone else runs (`ws://host:8888/kurento`, …); when given, nothing is started for media. */
  kmsUris?: string[];
  /** Which media server to start when no `kmsUris` are given; default `MEDIA_BACKEND`, else the embedded one. */
  mediaBackend?: MediaBackend;
  /** Port of the media server started here (embedded or KMS); a free one when omitted or 0. */
  kmsPort?: number;
  /**
   * Shared token of the media server (KMS_TOKEN): the embedded one requires it and the bridge sends it.
   * `npm start` passes a random one per run; none when omitted.
   */
  kmsToken?: string;
  /** WebRTC settings of the embedded media server (tests use `{loopbackOnly: true}`; a KMS then gathers ICE on `lo` only). */
  mediaServerWebrtc?: Partial<WebRtcSettings>;
  /** Extra bridge environment (e.g. KMS_LIMIT, REQUEST_TIMEOUT_MS, LOG_LEVEL). */
  bridgeEnv?: Record<string, string>;
  /**
   * Where the bridge (and the media server beside it) writes recordings before
   * uploading them; a fresh temp dir, removed at stop, when omitted.
   */
  recordingsDir?: string;
  /** Durable Object storage directory; a fresh temp dir when omitted. */
  persistTo?: string;
  inheritOutput?: boolean;
  readyTimeoutMs?: number;
}

export interface System {
  readonly url: string;
  readonly worker: WranglerDev;
  readonly bridge: BridgeHandle;
  /** The embedded media server, or null when another back end serves media. */
  readonly mediaServer: MediaServerHandle | null;
  /** The media back end started here; null when `kmsUris` were given. */
  readonly mediaBackend: MediaBackend | null;
  /** The KMS started here (`mediaBackend: "kms"`), or null. After `restartKms` the new one. */
  readonly kms: KmsHandle | null;
  /** The media server URL the bridge dials. */
  readonly mediaUrl: string;
  readonly bridgeSecret: string;
  /** The bridge's RECORDINGS_DIR. */
  readonly recordingsDir: string;
  /** Media objects the media server started here holds (embedded: every object; KMS: pipelines and their children). */
  mediaObjects(): Promise<number>;
  /**
   * The KMS started here goes away with `signal` (SIGKILL: a crash; SIGTERM: a clean stop) and a fresh
   * one starts on the same port, so the bridge finds it again. Only with `mediaBackend: "kms"`.
   */
  restartKms(signal?: NodeJS.Signals): Promise<void>;
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
    let kms: KmsHandle | null = null;
    let kmsUris = options.kmsUris;
    const backend: MediaBackend | null =
      kmsUris && kmsUris.length > 0 ? null : (options.mediaBackend ?? mediaBackendFromEnv());
    const loopbackOnly = options.mediaServerWebrtc?.loopbackOnly ?? false;
    if (backend === "kms") {
      kms = await startKms({ ...(options.kmsPort ? { port: options.kmsPort } : {}), loopbackOnly });
      stops.push(() => kms?.stop() ?? Promise.resolve());
      kmsUris = [kms.url];
    } else if (backend === "embedded") {
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
    if (!kmsUris) throw new Error("no media server");
    const mediaUrl = kmsUris[0] ?? "";

    const worker = await startWranglerDev({
      ...(options.port === undefined ? {} : { port: options.port }),
      ...(options.persistTo === undefined ? {} : { persistTo: options.persistTo }),
      vars: { BRIDGE_SECRET: bridgeSecret, ...options.vars },
      inheritOutput: options.inheritOutput ?? false,
    });
    stops.push(() => worker.stop());

    const recordingsDir = options.recordingsDir ?? mkdtempSync(join(tmpdir(), "room-recordings-"));
    if (!options.recordingsDir) stops.push(async () => rmSync(recordingsDir, { recursive: true, force: true }));

    const config = loadConfig({
      WORKER_URL: worker.url,
      BRIDGE_SECRET: bridgeSecret,
      BRIDGE_ID: "local-bridge",
      KMS_URIS: kmsUris.join(","),
      BRIDGE_HTTP_PORT: "0",
      RECORDINGS_DIR: recordingsDir,
      LOG_LEVEL: options.inheritOutput ? "info" : "error",
      // A KMS started here has no token check; the embedded one and servers given by URI may.
      ...(options.kmsToken && backend !== "kms" ? { KMS_TOKEN: options.kmsToken } : {}),
      ...options.bridgeEnv,
    });
    const bridge = await startBridge(config);
    stops.push(() => bridge.stop());

    await waitForBridges(worker.url, 1, options.readyTimeoutMs ?? 60_000);
    const embedded = mediaServer;
    return {
      url: worker.url,
      worker,
      bridge,
      mediaServer,
      mediaBackend: backend,
      get kms() {
        return kms;
      },
      mediaUrl,
      bridgeSecret,
      recordingsDir,
      async mediaObjects() {
        if (embedded) return embedded.stats().objects;
        if (kms) return kmsObjectCount(kms.url);
        throw new Error("mediaObjects: the media servers were given by URI, not started here");
      },
      async restartKms(signal: NodeJS.Signals = "SIGKILL") {
        const old = kms;
        if (!old) throw new Error("restartKms: no KMS was started here (mediaBackend is not 'kms')");
        old.signal(signal);
        await old.exited;
        kms = null;
        kms = await startKmsAgain(old.port, loopbackOnly);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** How long a restarted KMS may wait for its old port to be free. */
const REBIND_TIMEOUT_MS = 60_000;

/** A fresh KMS on `port` (the bridge dials that URL); retried while the port is still taken. */
async function startKmsAgain(port: number, loopbackOnly: boolean): Promise<KmsHandle> {
  const deadline = Date.now() + REBIND_TIMEOUT_MS;
  for (;;) {
    try {
      return await startKms({ port, loopbackOnly });
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 250));
    }
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
