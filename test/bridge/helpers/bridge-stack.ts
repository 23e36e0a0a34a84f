/**
 * A whole bridge stack owned by one test: the embedded media server (behind a
 * KmsRelay, so it may stop and start again at the same KMS address, and so
 * the test sees what it received), the worker stand-in and a bridge, every
 * server on a port the OS picks. Stopped when the test finishes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { filterSupport } from "../../../media-server/objects/filters/gstreamer.ts";
import { expect, onTestFinished } from "vitest";
import { type MediaServerHandle, startMediaServer } from "../../../media-server/index.ts";
import { type BridgeHandle, startBridge } from "../../../bridge/main.ts";
import { loadConfig } from "../../../bridge/config.ts";
import { createLogger } from "../../../bridge/log.ts";
import { RpcRequestError } from "../../../protocol/rpc-peer.ts";
import { FakeWorker, type Link } from "./fake-worker.ts";
import { KmsRelay } from "./kms-relay.ts";
import { type LinkLeg, publishOverLink } from "./link-media.ts";

export const SECRET = "bridge-stack-test-secret-0123456789";
/** Bound of every wait: it only guards against a hang, so it is far above the normal time of anything here. */
export const WAIT_MS = 30_000;
export const KMS_LOST_AFTER_MS = 1500;

const fastOptions = {
  backoff: { minMs: 50, maxMs: 400 },
  heartbeatMs: 0,
  loadIntervalMs: 300,
  kmsLostAfterMs: KMS_LOST_AFTER_MS,
  settleMs: 1500,
  attachTimeoutMs: 20_000,
} as const;

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

export interface Stack {
  /** The media server behind the bridge now (undefined while it is down). */
  media: MediaServerHandle | undefined;
  /** The KMS URI the bridge was configured with: the relay's. */
  readonly kmsUrl: string;
  readonly relay: KmsRelay;
  readonly worker: FakeWorker;
  readonly bridge: BridgeHandle;
  readonly logLines: string[];
  readonly legs: LinkLeg[];
  logs(): LogLine[];
  /** Starts a media server (port 0) and, with a relay, points the relay at it. */
  startMedia(): Promise<MediaServerHandle>;
  /** Stops the media server; with a relay, new connections are reset from now on (the KMS is down). */
  stopMedia(): Promise<void>;
}

function startMediaServerOnAnyPort(): Promise<MediaServerHandle> {
  return startMediaServer({ port: 0, webrtc: { loopbackOnly: true }, sessionGraceMs: 1000, log: () => {} });
}

/**
 * A media server (or none, `kms: "down"`), a worker stand-in and a bridge,
 * all owned by the calling test and stopped when it finishes.
 */
export async function startStack(
  options: { id?: string; kms?: "up" | "down"; settleMs?: number } = {},
): Promise<Stack> {
  const id = options.id ?? "test-bridge";
  const relay = await KmsRelay.start();
  let media = options.kms === "down" ? undefined : await startMediaServerOnAnyPort();
  relay.pointAt(media?.port);
  const kmsUrl = relay.url;
  const worker = await FakeWorker.start(SECRET);
  // Its own RECORDINGS_DIR: the default one is shared by every bridge on this machine.
  const recordingsDir = mkdtempSync(join(tmpdir(), "bridge-stack-recordings-"));
  const logLines: string[] = [];
  const legs: LinkLeg[] = [];
  const stack: Stack = {
    media,
    kmsUrl,
    relay,
    worker,
    bridge: undefined as unknown as BridgeHandle,
    logLines,
    legs,
    logs: () => logLines.map((line) => JSON.parse(line) as LogLine),
    async startMedia() {
      media = await startMediaServerOnAnyPort();
      stack.media = media;
      relay.pointAt(media.port);
      return media;
    },
    async stopMedia() {
      relay.pointAt(undefined);
      const stopping = media;
      media = undefined;
      stack.media = undefined;
      await stopping?.close();
    },
  };
  onTestFinished(async () => {
    await Promise.all(legs.map((leg) => leg.peer.close()));
    await stack.bridge?.stop();
    await worker.close();
    await media?.close();
    await relay.close();
    rmSync(recordingsDir, { recursive: true, force: true });
  });
  const bridge = await startBridge(
    loadConfig({
      BRIDGE_SECRET: SECRET,
      BRIDGE_ID: id,
      WORKER_URL: worker.url,
      KMS_URIS: kmsUrl,
      KMS_LIMIT: "10",
      REQUEST_TIMEOUT_MS: "20000",
      BRIDGE_HTTP_PORT: "0",
      RECORDINGS_DIR: recordingsDir,
      LOG_LEVEL: "silent",
    }),
    {
      ...fastOptions,
      ...(options.settleMs !== undefined ? { settleMs: options.settleMs } : {}),
      logger: createLogger({ level: "debug", sink: (line) => logLines.push(line) }),
    },
  );
  (stack as { bridge: BridgeHandle }).bridge = bridge;
  return stack;
}

export async function json(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

export async function failure(promise: Promise<unknown>): Promise<RpcRequestError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RpcRequestError) return error;
    throw error;
  }
  throw new Error("expected an error answer");
}

/** /health of a bridge holding nothing, with its one KMS in `kms` state. */
/**
 * What the bridge's /health says with nothing going on. `filters`: whether the media server offers
 * the hat (the embedded one does where GStreamer is installed); false for one never reached.
 */
export function idleHealth(
  bridgeId: string,
  kmsUrl: string,
  kms: { connected: boolean; state: string; filters?: boolean },
) {
  const { filters = filterSupport().faceOverlay, ...connection } = kms;
  return {
    status: kms.connected ? "ok" : "degraded",
    bridgeId,
    controlConnected: true,
    registered: true,
    rooms: 0,
    pipelines: 0,
    endpoints: 0,
    kms: [{ uri: kmsUrl, ...connection, pipelines: 0, limit: 10, filters }],
  };
}

export async function publish(stack: Stack, room: Link, user: string): Promise<LinkLeg> {
  const leg = await publishOverLink(room, user);
  stack.legs.push(leg);
  return leg;
}

/** Candidates answered `{}` may still have waited in the bridge's queue; a refused one is logged there. */
export function expectNoRefusedCandidates(stack: Stack): void {
  expect(stack.logs().filter((line) => line.msg === "queued ICE candidate refused")).toEqual([]);
}
