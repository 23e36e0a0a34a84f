// Benchmark of the embedded media server (not a test): one Chromium publisher
// (fake camera, 640×480, video capped at 0.5 Mbps) forwarded to 1, 10 and 50
// subscribers (SUBSCRIBERS=1,10,50,100 for more), once per forwarding path
// (BENCH_MODES=werift,fast; each mode on a fresh server started with
// MEDIA_FORWARDING=<mode>). The server runs as a child process
// (`media-server/main.ts`) so its CPU and RSS are read from /proc for that
// process alone. Subscribers are werift peers in this process (recvonly audio
// + video, counting bytes, packets and sequence gaps): cheaper than Chromium
// pages, but they still share the machine's cores with the server.
//
//   npm run bench:media-server            (MEASURE_SECONDS=10 by default)
//   MEDIA_SERVER_PROFILE_DIR=/tmp/prof npm run bench:media-server   (server under node --cpu-prof)
//   MEDIA_BACKEND=kms npm run bench:media-server
//
// With MEDIA_BACKEND=kms the same load runs against a real Kurento Media
// Server from KMS_HOME (scripts/kms.ts; its own process, sampled the same
// way). Every row prints CPU per forwarded packet (server CPU time over the
// RTP packets the subscribers received), which compares runs whatever the
// bitrate, and the last line is the rows as JSON.

import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Browser, Page } from "playwright-core";
import { closeChromium, launchChromium } from "../helpers/chromium.ts";
import { acceptAnswer, offerFromPage, startBlankPageServer } from "../media-server/helpers/browser.ts";
import { connectKurento } from "../media-server/helpers/kurento.ts";
import { waitFor } from "../media-server/helpers/werift-peer.ts";
import { startKms } from "../../scripts/kms.ts";
import { mediaBackendFromEnv } from "../../scripts/system.ts";
import {
  addSubscriber,
  CLOCK_TICKS,
  lossPercentOf,
  cameraContext,
  capPublisherBitrate,
  printTable,
  type ServerUnderTest,
  type Subscriber,
  sample,
  startEmbeddedServer,
} from "./media-load.ts";

const SUBSCRIBER_COUNTS = (process.env.SUBSCRIBERS ?? "1,10,50")
  .split(",")
  .map((value) => Number(value.trim()))
  .filter((count) => Number.isInteger(count) && count > 0)
  .sort((a, b) => a - b);
/** Both forwarding paths of the embedded server, each on a fresh server process, so one run compares them. */
const FORWARDING_MODES = (process.env.BENCH_MODES ?? "werift,fast")
  .split(",")
  .map((mode) => mode.trim())
  .filter((mode): mode is "fast" | "werift" => mode === "fast" || mode === "werift");
const MEASURE_SECONDS = Number(process.env.MEASURE_SECONDS ?? 10);
const WARMUP_SECONDS = 4;
/** The publisher's encoder is capped here, so every row forwards the same ~0.5 Mbps stream. */
const PUBLISHER_MAX_BITRATE = 500_000;
/**
 * MEDIA_SERVER_PROFILE_DIR=<dir>: the server runs under `node --cpu-prof` and writes one .cpuprofile per
 * mode into <dir>/<mode>/ when it stops (open it in Chrome DevTools, or summarise the self time per function).
 */
const PROFILE_DIR = process.env.MEDIA_SERVER_PROFILE_DIR;

async function startServerUnderTest(mode: string): Promise<ServerUnderTest> {
  if (mediaBackendFromEnv() === "kms") {
    // run.sh ends with exec: the PID is the server's own.
    const kms = await startKms({ loopbackOnly: true });
    return { name: "Kurento Media Server (KMS_HOME)", url: kms.url, pid: kms.pid, stop: () => kms.stop() };
  }
  const nodeArgs = PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(PROFILE_DIR, mode)}`] : [];
  return startEmbeddedServer(mode, nodeArgs);
}

interface PublisherStats {
  bytesSent: number;
  availableOutgoingBitrate: number;
  targetBitrate: number;
  frameWidth: number;
  frameHeight: number;
  framesPerSecond: number;
}

/** What the publishing page's own WebRTC stack reports: bytes sent, its bandwidth estimate and encoder target. */
async function publisherStats(page: Page): Promise<PublisherStats> {
  return page.evaluate(async () => {
    const result = {
      bytesSent: 0,
      availableOutgoingBitrate: 0,
      targetBitrate: 0,
      frameWidth: 0,
      frameHeight: 0,
      framesPerSecond: 0,
    };
    const stats = await (window as unknown as { pc: RTCPeerConnection }).pc.getStats();
    stats.forEach((report: Record<string, unknown>) => {
      if (report.type === "outbound-rtp" && report.kind === "video") {
        result.bytesSent += Number(report.bytesSent ?? 0);
        result.targetBitrate = Number(report.targetBitrate ?? 0);
        result.frameWidth = Number(report.frameWidth ?? 0);
        result.frameHeight = Number(report.frameHeight ?? 0);
        result.framesPerSecond = Number(report.framesPerSecond ?? 0);
      }
      if (report.type === "candidate-pair" && report.nominated)
        result.availableOutgoingBitrate = Number(report.availableOutgoingBitrate ?? 0);
    });
    return result;
  });
}

interface Row {
  mode: string;
  subscribers: number;
  cpuPercent: number;
  rssMB: number;
  packetsPerSec: number;
  usPerPacket: number | null;
  /** CPU above the publisher-only row, per forwarded packet: the cost of forwarding itself. */
  usPerPacketMarginal: number | null;
  lossPercent: number;
  cells: string[];
}

async function runMode(mode: string, browser: Browser, pagesUrl: string): Promise<Row[]> {
  const server = await startServerUnderTest(mode);
  const pid = server.pid;
  const client = await connectKurento(server.url);
  const rows: Row[] = [];
  const subscribers: Subscriber[] = [];
  const context = await cameraContext(browser, { width: 640, height: 480 });
  try {
    const pipeline = await client.create("MediaPipeline");
    const publisherEndpoint = await pipeline.create("WebRtcEndpoint");
    const page = await context.newPage();
    await page.goto(pagesUrl);
    const offer = await offerFromPage(page, "publish", publisherEndpoint);
    await acceptAnswer(page, await publisherEndpoint.processOffer(offer));
    await publisherEndpoint.gatherCandidates();
    await waitFor(
      async () => (await publisherEndpoint.getMediaState()) === "CONNECTED",
      20_000,
      "the publisher to connect",
    );
    await capPublisherBitrate(page, PUBLISHER_MAX_BITRATE);

    const measure = async (count: number) => {
      await sleep(WARMUP_SECONDS * 1000);
      const bytesBefore = subscribers.map((subscriber) => subscriber.bytes());
      const packetsBefore = subscribers.reduce((sum, subscriber) => sum + subscriber.packets(), 0);
      for (const subscriber of subscribers) subscriber.loss.reset();
      const publisherBefore = await publisherStats(page);
      const before = sample(pid);
      await sleep(MEASURE_SECONDS * 1000);
      const after = sample(pid);
      const publisherAfter = await publisherStats(page);
      const seconds = (after.at - before.at) / 1000;
      const cpuPercent = ((after.cpuTicks - before.cpuTicks) / CLOCK_TICKS / seconds) * 100;
      const perSubscriberKbps = subscribers.map(
        (subscriber, index) => ((subscriber.bytes() - (bytesBefore[index] ?? 0)) * 8) / seconds / 1000,
      );
      const averageKbps = perSubscriberKbps.length
        ? perSubscriberKbps.reduce((sum, kbps) => sum + kbps, 0) / perSubscriberKbps.length
        : 0;
      const minKbps = perSubscriberKbps.length ? Math.min(...perSubscriberKbps) : 0;
      const forwarded = subscribers.reduce((sum, subscriber) => sum + subscriber.packets(), 0) - packetsBefore;
      const cpuMicros = ((after.cpuTicks - before.cpuTicks) / CLOCK_TICKS) * 1e6;
      const lossPercent = lossPercentOf(subscribers);
      const usPerPacket = forwarded > 0 ? cpuMicros / forwarded : null;
      const baseline = rows[0]?.cpuPercent;
      const usPerPacketMarginal =
        forwarded > 0 && baseline !== undefined ? ((cpuPercent - baseline) * 1e4 * seconds) / forwarded : null;
      const publisherKbps = ((publisherAfter.bytesSent - publisherBefore.bytesSent) * 8) / seconds / 1000;
      const row: Row = {
        mode,
        subscribers: count,
        cpuPercent: Number(cpuPercent.toFixed(1)),
        rssMB: Math.round(after.rssKb / 1024),
        packetsPerSec: Math.round(forwarded / seconds),
        usPerPacket: usPerPacket === null ? null : Number(usPerPacket.toFixed(1)),
        usPerPacketMarginal: usPerPacketMarginal === null ? null : Number(usPerPacketMarginal.toFixed(1)),
        lossPercent: Number(lossPercent.toFixed(2)),
        cells: [],
      };
      row.cells = [
        mode,
        count === 0 ? "publisher only" : `${count}`,
        row.cpuPercent.toFixed(1),
        String(row.rssMB),
        publisherKbps.toFixed(0),
        `${publisherAfter.frameWidth}x${publisherAfter.frameHeight}@${publisherAfter.framesPerSecond}`,
        `${(publisherAfter.availableOutgoingBitrate / 1000).toFixed(0)} / ${(publisherAfter.targetBitrate / 1000).toFixed(0)}`,
        averageKbps.toFixed(0),
        minKbps.toFixed(0),
        String(row.packetsPerSec),
        usPerPacket === null ? "-" : usPerPacket.toFixed(1),
        usPerPacketMarginal === null ? "-" : usPerPacketMarginal.toFixed(1),
        row.lossPercent.toFixed(2),
      ];
      rows.push(row);
      process.stderr.write(`measured: ${mode}, ${count} subscribers: ${row.cells.join(" | ")}\n`);
    };

    await measure(0);
    for (const count of SUBSCRIBER_COUNTS) {
      // Subscribers accumulate from row to row: only the new ones negotiate.
      while (subscribers.length < count) subscribers.push(await addSubscriber(pipeline, publisherEndpoint));
      try {
        await waitFor(
          () => subscribers.every((subscriber) => subscriber.bytes() > 10_000),
          60_000,
          `${count} subscribers receiving`,
        );
      } catch (error) {
        // Measured anyway: the row's kbps (min) and loss then show how far this mode fell behind.
        process.stderr.write(`${mode}: ${error instanceof Error ? error.message : String(error)}\n`);
      }
      await measure(count);
    }
    for (const subscriber of subscribers) await subscriber.peer.close();
    await pipeline.release();
  } finally {
    client.close();
    await context.close();
    await server.stop();
  }
  return rows;
}

async function main(): Promise<void> {
  const pages = await startBlankPageServer();
  const browser = await launchChromium();
  const rows: Row[] = [];
  const modes = mediaBackendFromEnv() === "kms" ? ["kms"] : FORWARDING_MODES;
  try {
    for (const mode of modes) rows.push(...(await runMode(mode, browser, pages.url)));
  } finally {
    await closeChromium(browser);
    await pages.close();
  }

  const header = [
    "mode",
    "subscribers",
    "server CPU % of one core",
    "server RSS MB",
    "publisher video kbps",
    "publisher video",
    "publisher BWE / target kbps",
    "per-subscriber kbps (avg)",
    "(min)",
    "packets forwarded/s",
    "server CPU µs per forwarded packet",
    "(above publisher-only)",
    "subscriber loss %",
  ];
  console.log(
    `\n${MEASURE_SECONDS} s per row after ${WARMUP_SECONDS} s warm-up; publisher: Chromium fake camera 640x480 + audio, video capped at ${PUBLISHER_MAX_BITRATE / 1000} kbps; subscribers: werift peers (audio + video) in the bench process`,
  );
  printTable(
    header,
    rows.map((row) => row.cells),
  );
  const summary = rows.map(({ cells: _cells, ...row }) => row);
  console.log(JSON.stringify({ bench: "media-server", rows: summary }));
  process.exit(0);
}

await main();
