/**
 * The whole stack as `npm start` runs it, on 127.0.0.1: the worker under
 * wrangler dev (real workerd), the embedded media server (werift, Kurento
 * protocol) and the media bridge between them. Nothing is mocked.
 */
import { startBridge, loadConfig, type BridgeHandle } from "../../../bridge/main.ts";
import { startMediaServer, type MediaServerHandle } from "../../../bridge/media-server/index.ts";
import { startWranglerDev, type WranglerDev } from "../../../scripts/wrangler-dev.ts";
import { freePort } from "../../helpers/ports.ts";

export interface Stack {
  readonly url: string;
  readonly port: number;
  readonly dev: WranglerDev;
  readonly media: MediaServerHandle;
  readonly bridge: BridgeHandle;
  /** Stops the media server (everything it held is gone) and starts a fresh one on the same port. */
  restartMediaServer(): Promise<void>;
  stop(): Promise<void>;
}

const BRIDGE_SECRET = "e2e-bridge-secret-0123456789abcdef";

export interface StackOptions {
  /** Worker vars (wrangler `--var`). */
  readonly vars?: Record<string, string>;
  /** How long the bridge waits for a dropped media server before reporting its media lost (default 5 s). */
  readonly kmsLostAfterMs?: number;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const vars = options.vars ?? {};
  const dev = await startWranglerDev({ vars: { BRIDGE_SECRET, ...vars } });
  const mediaPort = await freePort();
  let media: MediaServerHandle | undefined;
  let bridge: BridgeHandle | undefined;
  try {
    media = await startMediaServer({ port: mediaPort, webrtc: { loopbackOnly: true }, log: () => {} });
    bridge = await startBridge(
      loadConfig({
        WORKER_URL: dev.url,
        BRIDGE_SECRET,
        KMS_URIS: media.url,
        BRIDGE_ID: "e2e-bridge",
        BRIDGE_HTTP_PORT: "0",
        LOG_LEVEL: "error",
      }),
      options.kmsLostAfterMs === undefined ? {} : { kmsLostAfterMs: options.kmsLostAfterMs },
    );
    await waitForBridge(dev.url);
  } catch (error) {
    await bridge?.stop();
    await media?.close();
    await dev.stop();
    throw error;
  }
  let m = media;
  const b = bridge;
  return {
    url: dev.url,
    port: dev.port,
    dev,
    get media() {
      return m;
    },
    bridge: b,
    async restartMediaServer() {
      await m.close();
      m = await startMediaServer({ port: mediaPort, webrtc: { loopbackOnly: true }, log: () => {} });
    },
    async stop() {
      // Let the bridge finish releasing what departed users held before it stops.
      const deadline = Date.now() + 5000;
      while (b.stats().pipelines > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await b.stop();
      await m.close();
      await dev.stop();
    },
  };
}

/** `/health` lists the bridge once it registered. */
async function waitForBridge(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const body = (await (await fetch(`${url}/health`)).json()) as { bridges?: number };
    if ((body.bridges ?? 0) > 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no media bridge registered with ${url} within ${timeoutMs} ms`);
}
