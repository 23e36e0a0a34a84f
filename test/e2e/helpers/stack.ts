/**
 * The whole system as `npm start` runs it (scripts/system.ts: the worker
 * under wrangler dev, a media server, the media bridge), on
 * 127.0.0.1 with loopback-only WebRTC. Nothing is mocked. Adds what the
 * browser tests need: the worker's port (for a proxy in front of it) and a
 * media server restart on the same port. The media server is the embedded
 * one, or a real KMS when MEDIA_BACKEND=kms (the `e2e-kms` project).
 *
 * No port is picked ahead of time: the media server listens on port 0 and
 * reports the port the OS gave it, and wrangler-dev retries a port taken
 * before it binds. Only the restart must bind a known port again (the
 * bridge dials it); it retries while another process holds it.
 */
import { startMediaServer, type MediaServerHandle } from "../../../media-server/index.ts";
import type { BridgeHandle } from "../../../bridge/main.ts";
import { startSystem } from "../../../scripts/system.ts";

export interface Stack {
  readonly url: string;
  /** The worker's port. */
  readonly port: number;
  readonly bridge: BridgeHandle;
  /** The log of the KMS serving media now (MEDIA_BACKEND=kms), else null. */
  readonly kmsLogFile: string | null;
  /** Stops the media server (everything it held is gone) and starts a fresh one on the same port. */
  restartMediaServer(): Promise<void>;
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Worker vars (wrangler `--var`). */
  readonly vars?: Record<string, string>;
}

/** How long a restart waits for the media server's port to be free again. */
const REBIND_TIMEOUT_MS = 60_000;
/** How long stop() lets the bridge release what departed users held. */
const RELEASE_TIMEOUT_MS = 30_000;

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const system = await startSystem({ vars: options.vars ?? {}, kmsPort: 0, mediaServerWebrtc: { loopbackOnly: true } });
  const first = system.mediaServer;
  if (!first && !system.kms) throw new Error("startSystem started no media server");
  const kmsPort = first?.port ?? 0;
  let current: MediaServerHandle | null = first;
  let replaced = false;
  return {
    url: system.url,
    port: system.worker.port,
    bridge: system.bridge,
    get kmsLogFile() {
      return system.kms?.logFile ?? null;
    },
    async restartMediaServer() {
      // A KMS is killed (a crash: everything it held is gone) and started again on its port.
      if (system.kms) return system.restartKms("SIGKILL");
      await current?.close();
      current = null;
      current = await listenAgain(kmsPort);
      replaced = true;
    },
    async stop() {
      // Let the bridge finish releasing what departed users held before it stops.
      const deadline = Date.now() + RELEASE_TIMEOUT_MS;
      while (system.bridge.stats().pipelines > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await system.stop();
      if (replaced) await current?.close();
    },
  };
}

/** A fresh media server on `port`; retried while the port is taken (EADDRINUSE), up to REBIND_TIMEOUT_MS. */
async function listenAgain(port: number): Promise<MediaServerHandle> {
  const deadline = Date.now() + REBIND_TIMEOUT_MS;
  for (;;) {
    try {
      return await startMediaServer({ port, webrtc: { loopbackOnly: true }, log: () => undefined });
    } catch (error) {
      const taken = (error as NodeJS.ErrnoException).code === "EADDRINUSE";
      if (!taken || Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
