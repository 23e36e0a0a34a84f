/**
 * The whole system as `npm start` runs it (scripts/system.ts: the worker
 * under wrangler dev, the embedded media server, the media bridge), on
 * 127.0.0.1 with loopback-only WebRTC. Nothing is mocked. Adds what the
 * browser tests need: the worker's port (for a proxy in front of it) and a
 * media server restart on the same port.
 */
import { startMediaServer, type MediaServerHandle } from "../../../media-server/index.ts";
import type { BridgeHandle } from "../../../bridge/main.ts";
import { startSystem } from "../../../scripts/system.ts";
import { freePort } from "../../helpers/ports.ts";

export interface Stack {
  readonly url: string;
  /** The worker's port. */
  readonly port: number;
  readonly bridge: BridgeHandle;
  /** Stops the media server (everything it held is gone) and starts a fresh one on the same port. */
  restartMediaServer(): Promise<void>;
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Worker vars (wrangler `--var`). */
  readonly vars?: Record<string, string>;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const kmsPort = await freePort();
  const system = await startSystem({ vars: options.vars ?? {}, kmsPort, mediaServerWebrtc: { loopbackOnly: true } });
  let current: MediaServerHandle | null = system.mediaServer;
  let replaced = false;
  return {
    url: system.url,
    port: system.worker.port,
    bridge: system.bridge,
    async restartMediaServer() {
      await current?.close();
      current = await startMediaServer({ port: kmsPort, webrtc: { loopbackOnly: true }, log: () => undefined });
      replaced = true;
    },
    async stop() {
      // Let the bridge finish releasing what departed users held before it stops.
      const deadline = Date.now() + 5000;
      while (system.bridge.stats().pipelines > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await system.stop();
      if (replaced) await current?.close();
    },
  };
}
