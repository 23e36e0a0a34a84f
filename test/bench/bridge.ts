/**
 * `npm run bench:bridge`: publish and subscribe round-trip latency through
 * the bridge (a room link from the test worker → bridge → kurento-client →
 * embedded media server) against kurento-client called directly on the same
 * media server, in the same run. Prints p50/p95/p99 of each and the overhead.
 *
 * Not a test: numbers only. ITERATIONS (default 30) and WARMUP (3) tune it.
 * The DO side is the links tests' ws harness; the lead may point it at a
 * real `wrangler dev` later.
 */
import { performance } from "node:perf_hooks";
import { startMediaServer } from "../../media-server/index.ts";
import { kmsObjectCount, startKms } from "../../scripts/kms.ts";
import { mediaBackendFromEnv } from "../../scripts/system.ts";
import { startBridge } from "../../bridge/bridge.ts";
import { loadConfig } from "../../bridge/config.ts";
import { silentLogger } from "../../bridge/log.ts";
import { loadKurento } from "../../bridge/media/kurento-media-server.ts";
import { ORIGINAL_BANDWIDTH } from "../../bridge/media/room-media.ts";
import { FakeWorker } from "../bridge/helpers/fake-worker.ts";
import { createClientPeer, stripCandidates } from "../media-server/helpers/werift-peer.ts";

const ITERATIONS = Number(process.env.ITERATIONS ?? 30);
const WARMUP = Number(process.env.WARMUP ?? 3);
const SECRET = "bench-bridge-secret-0123456789";

type Callback = (error: unknown, result?: unknown) => void;
/** kurento-client's callback form, as a promise (the promise form `console.trace`s failures). */
function call<T = unknown>(run: (callback: Callback) => unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    run((error, result) => (error ? reject(error) : resolve(result as T)));
  });
}

interface Element {
  on(event: string, listener: (event: unknown) => void): unknown;
  connect(sink: Element, callback: Callback): unknown;
  release(callback: Callback): unknown;
}
interface Endpoint extends Element {
  processOffer(offer: string, callback: Callback): unknown;
  gatherCandidates(callback: Callback): unknown;
  setMaxVideoRecvBandwidth(kbps: number, callback: Callback): unknown;
  setMinVideoRecvBandwidth(kbps: number, callback: Callback): unknown;
  setMaxVideoSendBandwidth(kbps: number, callback: Callback): unknown;
  setMinVideoSendBandwidth(kbps: number, callback: Callback): unknown;
}
interface Pipeline {
  create(type: string, params: Record<string, unknown>, callback: Callback): unknown;
  release(callback: Callback): unknown;
}
interface Client {
  create(type: "MediaPipeline", callback: Callback): unknown;
  close(): void;
}

async function offer(direction: "sendonly" | "recvonly"): Promise<{ sdp: string; close: () => Promise<void> }> {
  const peer = createClientPeer();
  peer.addTransceiver("video", { direction });
  peer.addTransceiver("audio", { direction });
  await peer.setLocalDescription(await peer.createOffer());
  return { sdp: stripCandidates(peer.localDescription?.sdp ?? ""), close: () => peer.close() };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Runs `a` and `b` in turns (so drift hits both alike); returns their samples after the warm-up. */
async function measurePair(
  labels: [string, string],
  a: (i: number) => Promise<number>,
  b: (i: number) => Promise<number>,
): Promise<[number[], number[]]> {
  const first: number[] = [];
  const second: number[] = [];
  for (let i = 0; i < WARMUP + ITERATIONS; i++) {
    // Alternate which goes first, so the cost of cleaning up after the previous one is shared.
    let x: number;
    let y: number;
    if (i % 2 === 0) {
      x = await a(i);
      y = await b(i);
    } else {
      y = await b(i);
      x = await a(i);
    }
    if (i >= WARMUP) {
      first.push(x);
      second.push(y);
    }
  }
  process.stderr.write(`  ${labels[0]} / ${labels[1]}: ${first.length} samples each\n`);
  return [first, second];
}

async function main(): Promise<void> {
  // MEDIA_BACKEND=kms: a real KMS from KMS_HOME (the anchor the embedded server is measured against).
  const media: { url: string; objects(): Promise<number>; close(): Promise<void>; name: string } =
    mediaBackendFromEnv() === "kms"
      ? await startKms({ loopbackOnly: true }).then((kms) => ({
          url: kms.url,
          objects: () => kmsObjectCount(kms.url),
          close: () => kms.stop(),
          name: "a real KMS",
        }))
      : await startMediaServer({ port: 0, webrtc: { loopbackOnly: true }, log: () => {} }).then((server) => ({
          url: server.url,
          objects: async () => server.stats().objects,
          close: () => server.close(),
          name: "embedded media server",
        }));
  const worker = await FakeWorker.start(SECRET);
  const config = loadConfig({
    BRIDGE_SECRET: SECRET,
    BRIDGE_ID: "bench",
    WORKER_URL: worker.url,
    KMS_URIS: media.url,
    BRIDGE_HTTP_PORT: "0",
    LOG_LEVEL: "silent",
  });
  const bridge = await startBridge(config, { logger: silentLogger, heartbeatMs: 0 });
  const kurento = loadKurento() as unknown as (
    uri: string,
    options?: Record<string, unknown>,
  ) => Client & { _re: { on(event: string, listener: () => void): void } };
  const direct = kurento(media.url);
  direct._re.on("error", () => undefined);
  const closers: Array<() => Promise<void>> = [];
  try {
    const control = await worker.registeredControl(15_000);
    await control.request("attach", { room: "bench", user: "keeper" });
    const room = await worker.roomLink("bench");
    await room.request("sync", { users: [] });

    // A publisher that stays, so every measured publish/subscribe finds the pipeline made (both paths alike).
    const keeperOffer = await offer("sendonly");
    closers.push(keeperOffer.close);
    await room.request("publish", { user: "keeper", sdpOffer: keeperOffer.sdp, loopback: false, dataChannels: false });

    const pipeline = await call<Pipeline>((cb) => direct.create("MediaPipeline", cb));
    const directKeeper = await call<Endpoint>((cb) => pipeline.create("WebRtcEndpoint", {}, cb));
    const directKeeperPass = await call<Element>((cb) => pipeline.create("PassThrough", {}, cb));
    await call((cb) => directKeeper.connect(directKeeperPass, cb));
    await call((cb) => directKeeper.processOffer(keeperOffer.sdp, cb));

    const bandwidth = async (endpoint: Endpoint) => {
      await Promise.all([
        call((cb) => endpoint.setMaxVideoRecvBandwidth(ORIGINAL_BANDWIDTH.maxVideoRecvKbps, cb)),
        call((cb) => endpoint.setMinVideoRecvBandwidth(ORIGINAL_BANDWIDTH.minVideoRecvKbps, cb)),
        call((cb) => endpoint.setMaxVideoSendBandwidth(ORIGINAL_BANDWIDTH.maxVideoSendKbps, cb)),
        call((cb) => endpoint.setMinVideoSendBandwidth(ORIGINAL_BANDWIDTH.minVideoSendKbps, cb)),
      ]);
    };

    process.stderr.write(`bench: ${ITERATIONS} iterations (+${WARMUP} warm-up) per case on ${media.url}\n`);

    // The bridge listens to these on every endpoint; so does the direct path, as an application would.
    const listen = (element: Element, events: string[]) => {
      for (const event of events) element.on(event, () => undefined);
    };
    const ENDPOINT_EVENTS = ["IceCandidateFound", "MediaStateChanged", "Error"];

    const [bridgePublish, directPublish] = await measurePair(
      ["publish through the bridge", "publish with kurento-client directly"],
      async (i) => {
        const { sdp, close } = await offer("sendonly");
        const started = performance.now();
        await room.request("publish", { user: `pub-${i}`, sdpOffer: sdp, loopback: false, dataChannels: false });
        const ms = performance.now() - started;
        await room.request("unpublish", { user: `pub-${i}` });
        await close();
        return ms;
      },
      async () => {
        const { sdp, close } = await offer("sendonly");
        const started = performance.now();
        // What the bridge does for a publish (room-media.ts), minus the room link.
        const endpoint = await call<Endpoint>((cb) => pipeline.create("WebRtcEndpoint", {}, cb));
        listen(endpoint, ENDPOINT_EVENTS);
        const pass = await call<Element>((cb) => pipeline.create("PassThrough", {}, cb));
        listen(pass, ["Error"]);
        await bandwidth(endpoint);
        await call((cb) => endpoint.connect(pass, cb));
        await call<string>((cb) => endpoint.processOffer(sdp, cb));
        await call((cb) => endpoint.gatherCandidates(cb));
        const ms = performance.now() - started;
        await Promise.all([call((cb) => endpoint.release(cb)), call((cb) => pass.release(cb))]);
        await close();
        return ms;
      },
    );

    const [bridgeSubscribe, directSubscribe] = await measurePair(
      ["subscribe through the bridge", "subscribe with kurento-client directly"],
      async (i) => {
        const { sdp, close } = await offer("recvonly");
        const started = performance.now();
        await room.request("subscribe", { user: `sub-${i}`, sender: "keeper", sdpOffer: sdp });
        const ms = performance.now() - started;
        await room.request("unsubscribe", { user: `sub-${i}`, sender: "keeper" });
        await close();
        return ms;
      },
      async () => {
        const { sdp, close } = await offer("recvonly");
        const started = performance.now();
        const endpoint = await call<Endpoint>((cb) => pipeline.create("WebRtcEndpoint", {}, cb));
        listen(endpoint, ENDPOINT_EVENTS);
        await bandwidth(endpoint);
        await call((cb) => directKeeperPass.connect(endpoint, cb));
        await call<string>((cb) => endpoint.processOffer(sdp, cb));
        await call((cb) => endpoint.gatherCandidates(cb));
        const ms = performance.now() - started;
        await call((cb) => endpoint.release(cb));
        await close();
        return ms;
      },
    );

    await call((cb) => pipeline.release(cb));
    await room.request("releaseRoom", {});
    const deadline = Date.now() + 5000;
    while ((await media.objects()) !== 0) {
      if (Date.now() > deadline) throw new Error("timed out waiting for every media object released");
      await new Promise((r) => setTimeout(r, 100));
    }

    const row = (name: string, bridged: number[], plain: number[]) => {
      const ms = (values: number[], p: number) => `p${p} ${percentile(values, p).toFixed(1).padStart(7)} ms`;
      const [b50, d50] = [percentile(bridged, 50), percentile(plain, 50)];
      return `${name.padEnd(10)} bridge ${ms(bridged, 50)}  ${ms(bridged, 95)}  ${ms(bridged, 99)} | direct ${ms(plain, 50)}  ${ms(plain, 95)}  ${ms(plain, 99)} | overhead p50 ×${(b50 / d50).toFixed(2)} (+${(b50 - d50).toFixed(1)} ms)`;
    };
    console.log(
      `\nMedia bridge round trips (${ITERATIONS} iterations, ${media.name}, werift offers, Node ${process.version})`,
    );
    console.log(row("publish", bridgePublish, directPublish));
    console.log(row("subscribe", bridgeSubscribe, directSubscribe));
  } finally {
    for (const close of closers) await close();
    direct.close();
    await bridge.stop();
    await worker.close();
    await media.close();
  }
}

await main();
process.exit(0);
