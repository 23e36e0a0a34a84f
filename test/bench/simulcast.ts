// Benchmark of the embedded media server with simulcast (not a test): the
// server's CPU for one simulcast publisher whose 10 subscribers are split
// across its layers, next to one non-simulcast publisher with 10 subscribers.
//
//   single     Chromium publisher, fake camera 1280x720 + audio, one video
//              stream capped at 1.5 Mbps (comparable to the top layer);
//              10 werift subscribers.
//   simulcast  the same camera published in three RID layers
//              (SIMULCAST_LAYERS of web/src/client/negotiation.ts: l 1/4
//              150 kbps, m 1/2 500 kbps, h full 1.5 Mbps); 10 werift
//              subscribers, 4 asking "low", 3 "medium", 3 "high" through the
//              server's WebRtcEndpoint operation setVideoQuality.
//
// Each scenario runs on a fresh server process (`media-server/main.ts`,
// MEDIA_FORWARDING=fast unless set, its CPU and RSS read from /proc) and a
// fresh Chromium page; the publisher's endpoint may receive 2.5 Mbps
// (setMaxVideoRecvBandwidth, the REMB it gets), and the run waits until the
// page's getStats shows every layer sending before adding subscribers. Then a
// warm-up and the same measurement window for both. Subscribers are werift
// peers in this process (recvonly audio + video, counting bytes, packets and
// sequence gaps); "kbps" of a subscriber is its video alone, "packets" are
// audio and video. The run checks that subscribers asking different
// qualities receive different bitrates (low < medium < high) and which layer
// each one is forwarded (getVideoQuality), and ends with the rows as JSON.
//
//   npm run bench:simulcast                 (MEASURE_SECONDS=10, WARMUP_SECONDS=5 by default)
//   BENCH_SCENARIOS=simulcast MEASURE_SECONDS=20 npm run bench:simulcast
//   MEDIA_FORWARDING=werift npm run bench:simulcast

import { setTimeout as sleep } from "node:timers/promises";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { SIMULCAST_LAYERS } from "../../web/src/client/negotiation.ts";
import { closeChromium, launchChromium } from "../helpers/chromium.ts";
import { acceptAnswer, offerFromPage, startBlankPageServer } from "../media-server/helpers/browser.ts";
import { connectKurento, type KurentoWebRtcEndpoint } from "../media-server/helpers/kurento.ts";
import {
  addSubscriber,
  CLOCK_TICKS,
  lossPercentOf,
  cameraContext,
  capPublisherBitrate,
  printTable,
  type Subscriber,
  sample,
  startEmbeddedServer,
} from "./media-load.ts";

type Scenario = "single" | "simulcast";
type Quality = "low" | "medium" | "high";

const SCENARIOS = (process.env.BENCH_SCENARIOS ?? "single,simulcast")
  .split(",")
  .map((name) => name.trim())
  .filter((name): name is Scenario => name === "single" || name === "simulcast");
const MEASURE_SECONDS = Number(process.env.MEASURE_SECONDS ?? 10);
const WARMUP_SECONDS = Number(process.env.WARMUP_SECONDS ?? 5);
const MEDIA_FORWARDING = process.env.MEDIA_FORWARDING ?? "fast";
const CAMERA = { width: 1280, height: 720 };
/** The single publisher's cap: the simulcast top layer's maxBitrate, so the two compare. */
const SINGLE_MAX_BITRATE = 1_500_000;
/** What the publisher's endpoint may receive (its REMB): room for all three layers (~2.15 Mbps). */
const PUBLISHER_MAX_RECV_KBPS = 2500;
/** The subscribers of each scenario; with simulcast, how many ask each quality. */
const SPLIT: ReadonlyArray<readonly [Quality, number]> = [
  ["low", 4],
  ["medium", 3],
  ["high", 3],
];
/** The layer index each quality should get from a three-layer publisher (the offer's order, lowest first). */
const EXPECTED_LAYER: Record<Quality, number> = { low: 0, medium: 1, high: 2 };
/** Bound of every wait for something to happen (a connection, layers sending, subscribers receiving). */
const WAIT_MS = 60_000;

/**
 * kurento-client's generic invocation (`MediaObject._invoke`), for operations its generated classes do not
 * know: the embedded server's setVideoQuality, getVideoQuality and getSimulcastLayers. The bridge calls
 * setVideoQuality the same way (bridge/media/kurento-objects.ts).
 */
interface Invokable {
  _invoke(
    transaction: undefined,
    method: string,
    params: Record<string, unknown>,
    callback: (error: unknown, result: unknown) => void,
  ): unknown;
}

function invoke(endpoint: KurentoWebRtcEndpoint, method: string, params: Record<string, unknown> = {}) {
  return new Promise<unknown>((resolve, reject) => {
    (endpoint as unknown as Invokable)._invoke(undefined, method, params, (error, result) =>
      error ? reject(error) : resolve(result),
    );
  });
}

async function forwardedLayer(endpoint: KurentoWebRtcEndpoint): Promise<number | null> {
  const answer = (await invoke(endpoint, "getVideoQuality")) as { layer?: number | null };
  return typeof answer.layer === "number" ? answer.layer : null;
}

/** Polls `predicate` every `intervalMs` until it holds or `timeoutMs` passed; false on timeout. */
async function waitUntil(predicate: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return true;
    if (Date.now() > deadline) return false;
    await sleep(intervalMs);
  }
}

function warn(message: string): void {
  console.log(`WARNING: ${message}`);
}

/**
 * The page publishes through the shared helper (offerFromPage: `addTransceiver(track, {direction, streams})`);
 * this init script gives the video transceiver the client's simulcast encodings, as
 * web/src/client/negotiation.ts does when the room offers simulcast.
 */
async function publishInLayers(context: BrowserContext, layers: RTCRtpEncodingParameters[]): Promise<void> {
  await context.addInitScript((encodings) => {
    const original = RTCPeerConnection.prototype.addTransceiver;
    RTCPeerConnection.prototype.addTransceiver = function (
      this: RTCPeerConnection,
      trackOrKind: MediaStreamTrack | string,
      init?: RTCRtpTransceiverInit,
    ) {
      const video = typeof trackOrKind !== "string" && trackOrKind.kind === "video";
      return original.call(this, trackOrKind, video ? { ...init, sendEncodings: encodings } : init);
    };
  }, layers);
}

interface LayerStats {
  /** The RID, or "-" for a stream without simulcast. */
  rid: string;
  bytesSent: number;
  packetsSent: number;
  frameWidth: number;
  frameHeight: number;
  framesPerSecond: number;
  targetBitrate: number;
  qualityLimitationReason: string;
}

interface PublisherSnapshot {
  at: number;
  layers: LayerStats[];
  availableOutgoingBitrate: number;
}

/** The publishing page's outbound video, one entry per RID (Chromium reports an outbound-rtp per layer). */
async function publisherSnapshot(page: Page): Promise<PublisherSnapshot> {
  const result = await page.evaluate(async () => {
    const layers: LayerStats[] = [];
    const reports = new Map<string, Record<string, unknown>>();
    let selectedPairId = "";
    const stats = await (window as unknown as { pc: RTCPeerConnection }).pc.getStats();
    stats.forEach((report: Record<string, unknown>) => {
      reports.set(String(report.id), report);
      if (report.type === "transport" && typeof report.selectedCandidatePairId === "string")
        selectedPairId = report.selectedCandidatePairId;
      if (report.type === "outbound-rtp" && report.kind === "video")
        layers.push({
          rid: typeof report.rid === "string" ? report.rid : "-",
          bytesSent: Number(report.bytesSent ?? 0),
          packetsSent: Number(report.packetsSent ?? 0),
          frameWidth: Number(report.frameWidth ?? 0),
          frameHeight: Number(report.frameHeight ?? 0),
          framesPerSecond: Number(report.framesPerSecond ?? 0),
          targetBitrate: Number(report.targetBitrate ?? 0),
          qualityLimitationReason: String(report.qualityLimitationReason ?? ""),
        });
    });
    // The estimate of the pair in use (the transport names it; Chromium may list several nominated pairs).
    const availableOutgoingBitrate = Number(reports.get(selectedPairId)?.availableOutgoingBitrate ?? 0);
    return { layers, availableOutgoingBitrate };
  });
  const order = ["l", "m", "h", "-"];
  result.layers.sort((a, b) => order.indexOf(a.rid) - order.indexOf(b.rid));
  return { at: performance.now(), ...result };
}

interface LayerRate {
  rid: string;
  width: number;
  height: number;
  fps: number;
  kbps: number;
  packetsPerSec: number;
  targetKbps: number;
  limitation: string;
}

function layerRates(before: PublisherSnapshot, after: PublisherSnapshot): LayerRate[] {
  const seconds = (after.at - before.at) / 1000;
  return after.layers.map((layer) => {
    const earlier = before.layers.find((candidate) => candidate.rid === layer.rid);
    return {
      rid: layer.rid,
      width: layer.frameWidth,
      height: layer.frameHeight,
      fps: layer.framesPerSecond,
      kbps: ((layer.bytesSent - (earlier?.bytesSent ?? 0)) * 8) / seconds / 1000,
      packetsPerSec: (layer.packetsSent - (earlier?.packetsSent ?? 0)) / seconds,
      targetKbps: layer.targetBitrate / 1000,
      limitation: layer.qualityLimitationReason,
    };
  });
}

function describeLayers(rates: LayerRate[]): string {
  return rates
    .map(
      (rate) =>
        `${rate.rid === "-" ? "" : `${rate.rid} `}${rate.width}x${rate.height}@${rate.fps} ${rate.kbps.toFixed(0)}`,
    )
    .join(", ");
}

/**
 * Whether the publisher sends what the scenario configured: each layer (or the one stream) at its full
 * configured width, its bytes growing over a second.
 */
async function publisherSending(page: Page, scenario: Scenario): Promise<{ ok: boolean; rates: LayerRate[] }> {
  const before = await publisherSnapshot(page);
  await sleep(1000);
  const rates = layerRates(before, await publisherSnapshot(page));
  const wanted =
    scenario === "simulcast"
      ? SIMULCAST_LAYERS.map((layer) => ({
          rid: layer.rid ?? "",
          width: CAMERA.width / (layer.scaleResolutionDownBy ?? 1),
        }))
      : [{ rid: "-", width: CAMERA.width }];
  const ok = wanted.every(({ rid, width }) =>
    rates.some((rate) => rate.rid === rid && rate.width === width && rate.kbps > 0),
  );
  return { ok, rates };
}

interface QualitySubscriber extends Subscriber {
  /** The quality asked for; undefined without simulcast (one stream for everyone). */
  quality: Quality | undefined;
}

interface Row {
  scenario: Scenario;
  subscribers: number;
  cpuPercent: number;
  rssMB: number;
  publisherKbps: number;
  /** Video RTP packets/s the publisher sent (all layers): what the server receives. */
  publisherPacketsPerSec: number;
  publisherLayers: Record<string, { width: number; height: number; fps: number; kbps: number }>;
  packetsPerSec: number;
  usPerPacket: number | null;
  lossPercent: number;
  /** Average video kbps per subscriber by the quality it asked ("all" without simulcast). */
  kbpsByQuality: Record<string, number>;
  /** The layer each subscriber was forwarded at the end of the window, by quality (simulcast only). */
  layersByQuality?: Record<string, Array<number | null>>;
  cells: string[];
}

async function runScenario(scenario: Scenario, browser: Browser, pagesUrl: string): Promise<Row> {
  const simulcast = scenario === "simulcast";
  const server = await startEmbeddedServer(MEDIA_FORWARDING);
  const subscribers: QualitySubscriber[] = [];
  let client: Awaited<ReturnType<typeof connectKurento>> | undefined;
  let context: BrowserContext | undefined;
  try {
    client = await connectKurento(server.url);
    context = await cameraContext(browser, CAMERA);
    if (simulcast) await publishInLayers(context, SIMULCAST_LAYERS);
    const pipeline = await client.create("MediaPipeline");
    const publisher = await pipeline.create("WebRtcEndpoint");
    // Without this the REMB the server sends could stop Chromium's top layer.
    await publisher.setMaxVideoRecvBandwidth(PUBLISHER_MAX_RECV_KBPS);
    const page = await context.newPage();
    await page.goto(pagesUrl);
    const offer = await offerFromPage(page, "publish", publisher);
    if (simulcast && !offer.includes("a=simulcast:send")) throw new Error("the page's offer has no a=simulcast");
    const answer = await publisher.processOffer(offer);
    if (simulcast && !answer.includes("a=simulcast:recv")) throw new Error("the server's answer has no a=simulcast");
    await acceptAnswer(page, answer);
    await publisher.gatherCandidates();
    if (!(await waitUntil(async () => (await publisher.getMediaState()) === "CONNECTED", WAIT_MS)))
      throw new Error(`${scenario}: the publisher did not connect within ${WAIT_MS / 1000} s`);
    if (!simulcast) await capPublisherBitrate(page, SINGLE_MAX_BITRATE);

    // Chromium's bandwidth estimate starts low and turns the layers on one by one as it grows.
    let sending = await publisherSending(page, scenario);
    const sendingDeadline = Date.now() + WAIT_MS;
    while (!sending.ok && Date.now() < sendingDeadline) sending = await publisherSending(page, scenario);
    if (simulcast) {
      const published = await invoke(publisher, "getSimulcastLayers");
      console.log(`${scenario}: the server counts ${String(published)} simulcast layers from the publisher`);
    }
    if (sending.ok)
      console.log(
        `${scenario}: every configured layer sends: ${describeLayers(sending.rates)} (WxH@fps kbps over 1 s)`,
      );
    else
      warn(
        `${scenario}: within ${WAIT_MS / 1000} s the publisher never sent every configured layer at full size: ${describeLayers(sending.rates)}`,
      );

    for (const [quality, count] of SPLIT) {
      for (let i = 0; i < count; i++) {
        const subscriber = await addSubscriber(pipeline, publisher);
        // Set before the subscriber's DTLS is up, so its first picture is already from that layer.
        if (simulcast) await invoke(subscriber.endpoint, "setVideoQuality", { quality });
        subscribers.push({ ...subscriber, quality: simulcast ? quality : undefined });
      }
    }
    if (!(await waitUntil(() => subscribers.every((subscriber) => subscriber.videoBytes() > 10_000), WAIT_MS)))
      warn(`${scenario}: not every subscriber received video within ${WAIT_MS / 1000} s (measured anyway)`);
    if (simulcast) {
      const onLayer = await waitUntil(
        async () => {
          const layers = await Promise.all(subscribers.map((subscriber) => forwardedLayer(subscriber.endpoint)));
          return subscribers.every(
            (subscriber, index) => layers[index] === EXPECTED_LAYER[subscriber.quality ?? "high"],
          );
        },
        WAIT_MS,
        500,
      );
      if (!onLayer) warn(`${scenario}: within ${WAIT_MS / 1000} s not every subscriber was forwarded its layer`);
    }

    await sleep(WARMUP_SECONDS * 1000);
    const videoBefore = subscribers.map((subscriber) => subscriber.videoBytes());
    const packetsBefore = subscribers.reduce((sum, subscriber) => sum + subscriber.packets(), 0);
    for (const subscriber of subscribers) subscriber.loss.reset();
    const publisherBefore = await publisherSnapshot(page);
    const before = sample(server.pid);
    await sleep(MEASURE_SECONDS * 1000);
    const after = sample(server.pid);
    const publisherAfter = await publisherSnapshot(page);
    const seconds = (after.at - before.at) / 1000;

    const cpuSeconds = (after.cpuTicks - before.cpuTicks) / CLOCK_TICKS;
    const cpuPercent = (cpuSeconds / seconds) * 100;
    const forwarded = subscribers.reduce((sum, subscriber) => sum + subscriber.packets(), 0) - packetsBefore;
    const usPerPacket = forwarded > 0 ? (cpuSeconds * 1e6) / forwarded : null;
    const lossPercent = lossPercentOf(subscribers);

    const kbpsByQuality: Record<string, number> = {};
    const groups = new Map<string, number[]>();
    subscribers.forEach((subscriber, index) => {
      const kbps = ((subscriber.videoBytes() - (videoBefore[index] ?? 0)) * 8) / seconds / 1000;
      const key = subscriber.quality ?? "all";
      groups.set(key, [...(groups.get(key) ?? []), kbps]);
    });
    for (const [key, values] of groups)
      kbpsByQuality[key] = Math.round(values.reduce((sum, kbps) => sum + kbps, 0) / values.length);

    const rates = layerRates(publisherBefore, publisherAfter);
    const publisherKbps = rates.reduce((sum, rate) => sum + rate.kbps, 0);
    const publisherPacketsPerSec = rates.reduce((sum, rate) => sum + rate.packetsPerSec, 0);
    const publisherLayers: Row["publisherLayers"] = {};
    for (const rate of rates)
      publisherLayers[rate.rid] = {
        width: rate.width,
        height: rate.height,
        fps: rate.fps,
        kbps: Math.round(rate.kbps),
      };
    for (const rate of rates)
      console.log(
        `${scenario}: publisher ${rate.rid === "-" ? "stream" : `rid ${rate.rid}`}: ${rate.width}x${rate.height} @ ${rate.fps} fps, ${rate.kbps.toFixed(0)} kbps (encoder target ${rate.targetKbps.toFixed(0)}, limited by ${rate.limitation || "?"})`,
      );

    let layersByQuality: Record<string, Array<number | null>> | undefined;
    if (simulcast) {
      layersByQuality = {};
      for (const subscriber of subscribers) {
        const key = subscriber.quality ?? "high";
        layersByQuality[key] = [...(layersByQuality[key] ?? []), await forwardedLayer(subscriber.endpoint)];
      }
      console.log(
        `${scenario}: layer forwarded at the end (0 = l, 1 = m, 2 = h): ${SPLIT.map(([quality]) => `${quality} ${JSON.stringify(layersByQuality?.[quality] ?? [])}`).join(", ")}`,
      );
    }

    const row: Row = {
      scenario,
      subscribers: subscribers.length,
      cpuPercent: Number(cpuPercent.toFixed(1)),
      rssMB: Math.round(after.rssKb / 1024),
      publisherKbps: Math.round(publisherKbps),
      publisherPacketsPerSec: Math.round(publisherPacketsPerSec),
      publisherLayers,
      packetsPerSec: Math.round(forwarded / seconds),
      usPerPacket: usPerPacket === null ? null : Number(usPerPacket.toFixed(1)),
      lossPercent: Number(lossPercent.toFixed(2)),
      kbpsByQuality,
      ...(layersByQuality ? { layersByQuality } : {}),
      cells: [],
    };
    row.cells = [
      scenario,
      simulcast
        ? `${subscribers.length} (${SPLIT.map(([quality, count]) => `${count} ${quality}`).join(", ")})`
        : `${subscribers.length}`,
      row.cpuPercent.toFixed(1),
      String(row.rssMB),
      String(row.publisherKbps),
      String(row.publisherPacketsPerSec),
      describeLayers(rates),
      `${(publisherAfter.availableOutgoingBitrate / 1000).toFixed(0)}`,
      Object.entries(kbpsByQuality)
        .map(([key, kbps]) => `${key} ${kbps}`)
        .join(" / "),
      String(row.packetsPerSec),
      usPerPacket === null ? "-" : usPerPacket.toFixed(1),
      row.lossPercent.toFixed(2),
    ];
    process.stderr.write(`measured: ${row.cells.join(" | ")}\n`);
    await pipeline.release();
    return row;
  } finally {
    for (const subscriber of subscribers) await subscriber.peer.close().catch(() => {});
    client?.close();
    await context?.close().catch(() => {});
    await server.stop();
  }
}

async function main(): Promise<void> {
  const pages = await startBlankPageServer();
  const rows: Row[] = [];
  let browser: Browser | undefined;
  try {
    browser = await launchChromium();
    for (const scenario of SCENARIOS) rows.push(await runScenario(scenario, browser, pages.url));
  } finally {
    if (browser) await closeChromium(browser);
    await pages.close();
  }

  console.log(
    `\n${MEASURE_SECONDS} s per row after ${WARMUP_SECONDS} s warm-up, each scenario on a fresh server (MEDIA_FORWARDING=${MEDIA_FORWARDING}) and page; publisher: Chromium fake camera ${CAMERA.width}x${CAMERA.height} + audio, endpoint maxVideoRecvBandwidth ${PUBLISHER_MAX_RECV_KBPS} kbps; single: one stream capped at ${SINGLE_MAX_BITRATE / 1000} kbps; simulcast: ${SIMULCAST_LAYERS.map((layer) => `${layer.rid} 1/${layer.scaleResolutionDownBy} ${(layer.maxBitrate ?? 0) / 1000} kbps`).join(", ")}; subscribers: werift peers (audio + video) in the bench process`,
  );
  printTable(
    [
      "scenario",
      "subscribers",
      "server CPU % of one core",
      "server RSS MB",
      "publisher video kbps",
      "publisher video packets/s",
      "publisher layers (WxH@fps kbps)",
      "publisher BWE kbps",
      "per-subscriber video kbps (avg by quality)",
      "packets forwarded/s",
      "server CPU µs per forwarded packet",
      "subscriber loss %",
    ],
    rows.map((row) => row.cells),
  );

  const layered = rows.find((row) => row.scenario === "simulcast");
  if (layered) {
    const { low, medium, high } = layered.kbpsByQuality;
    if (low !== undefined && medium !== undefined && high !== undefined && low < medium && medium < high)
      console.log(
        `check: subscribers asking low < medium < high receive ${low} < ${medium} < ${high} kbps of video: ok`,
      );
    else
      warn(
        `subscribers asking different qualities did not receive increasing bitrates (low ${low}, medium ${medium}, high ${high} kbps)`,
      );
  }
  const single = rows.find((row) => row.scenario === "single");
  if (layered && single && single.cpuPercent > 0)
    console.log(
      `simulcast / single: server CPU x${(layered.cpuPercent / single.cpuPercent).toFixed(2)}, packets forwarded/s x${(layered.packetsPerSec / Math.max(1, single.packetsPerSec)).toFixed(2)}, publisher kbps x${(layered.publisherKbps / Math.max(1, single.publisherKbps)).toFixed(2)}`,
    );
  const summary = rows.map(({ cells: _cells, ...row }) => row);
  console.log(JSON.stringify({ bench: "simulcast", rows: summary }));
  process.exit(0);
}

await main();
