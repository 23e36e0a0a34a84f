// Benchmark of the embedded media server (not a test): one Chromium publisher
// (fake camera, 640×480) forwarded to 1, 5 and 10 subscribers. The server runs
// as a child process (`media-server/main.ts`) so its CPU and RSS are
// read from /proc for that process alone. Subscribers are werift peers in this
// process (recvonly audio + video, counting the bytes they receive): cheaper
// than Chromium pages, so 10 of them fit on a small machine, but they still
// share its cores with the server.
//
//   npm run bench:media-server            (MEASURE_SECONDS=10 by default)
//   MEDIA_BACKEND=kms npm run bench:media-server
//
// With MEDIA_BACKEND=kms the same load runs against a real Kurento Media
// Server from KMS_HOME (scripts/kms.ts; its own process, sampled the same
// way): KMS is the anchor the embedded server is measured against. Both
// rows print CPU per forwarded packet (server CPU time over the RTP packets
// the subscribers received), which compares the two whatever the bitrate.

import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { Page } from "playwright-core";
import type { RTCPeerConnection as WeriftPeer } from "werift";
import { closeChromium, launchChromium, mediaContext } from "../helpers/chromium.ts";
import { freePort } from "../helpers/ports.ts";
import { acceptAnswer, offerFromPage, startBlankPageServer } from "../media-server/helpers/browser.ts";
import {
  connectKurento,
  iceCandidate,
  type KurentoPipeline,
  type KurentoWebRtcEndpoint,
} from "../media-server/helpers/kurento.ts";
import { createClientPeer, waitFor } from "../media-server/helpers/werift-peer.ts";
import { startKms } from "../../scripts/kms.ts";
import { mediaBackendFromEnv } from "../../scripts/system.ts";

const SUBSCRIBER_COUNTS = [1, 5, 10];
const MEASURE_SECONDS = Number(process.env.MEASURE_SECONDS ?? 10);
const WARMUP_SECONDS = 4;
const CLOCK_TICKS = 100; // USER_HZ on Linux

interface Sample {
  cpuTicks: number;
  rssKb: number;
  at: number;
}

function sample(pid: number): Sample {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return { cpuTicks, rssKb: Number(rss?.[1] ?? 0), at: performance.now() };
}

async function startServerProcess(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["media-server/main.ts"], {
    env: { ...process.env, KMS_PORT: String(port), KMS_HOST: "127.0.0.1", KMS_ICE_LOOPBACK_ONLY: "1" },
    stdio: ["ignore", "inherit", "pipe"],
  });
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`media server exited with ${code}`)));
    child.stderr?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("Kurento protocol on")) resolve();
    });
  });
  return child;
}

interface Subscriber {
  endpoint: KurentoWebRtcEndpoint;
  peer: WeriftPeer;
  bytes: () => number;
  packets: () => number;
}

/** The media server under test: its URL, the PID to sample, and how to stop it. */
interface ServerUnderTest {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

async function startServerUnderTest(): Promise<ServerUnderTest> {
  if (mediaBackendFromEnv() === "kms") {
    // run.sh ends with exec: the PID is the server's own.
    const kms = await startKms({ loopbackOnly: true });
    return { name: "Kurento Media Server (KMS_HOME)", url: kms.url, pid: kms.pid, stop: () => kms.stop() };
  }
  const port = await freePort();
  const child = await startServerProcess(port);
  const pid = child.pid;
  if (pid === undefined) throw new Error("no server pid");
  return {
    name: "Embedded media server",
    url: `ws://127.0.0.1:${port}/kurento`,
    pid,
    async stop() {
      child.kill("SIGTERM");
    },
  };
}

async function addSubscriber(pipeline: KurentoPipeline, source: KurentoWebRtcEndpoint): Promise<Subscriber> {
  const endpoint = await pipeline.create("WebRtcEndpoint");
  const peer = createClientPeer();
  let bytes = 0;
  let packets = 0;
  endpoint.on("IceCandidateFound", (event) => {
    const candidate = event.candidate as { candidate: string; sdpMid: string; sdpMLineIndex: number };
    void peer.addIceCandidate(candidate);
  });
  peer.onIceCandidate.subscribe((candidate) => {
    if (!candidate) return;
    const init = candidate.toJSON();
    void endpoint.addIceCandidate(
      iceCandidate({ candidate: init.candidate ?? "", sdpMid: init.sdpMid, sdpMLineIndex: init.sdpMLineIndex }),
    );
  });
  peer.onTrack.subscribe((track) => {
    track.onReceiveRtp.subscribe((packet) => {
      bytes += packet.payload.length + packet.header.serializeSize;
      packets += 1;
    });
  });
  peer.addTransceiver("audio", { direction: "recvonly" });
  peer.addTransceiver("video", { direction: "recvonly" });
  await peer.setLocalDescription(await peer.createOffer());
  await source.connect(endpoint);
  const answer = await endpoint.processOffer(peer.localDescription?.sdp ?? "");
  await peer.setRemoteDescription({ type: "answer", sdp: answer });
  await endpoint.gatherCandidates();
  return { endpoint, peer, bytes: () => bytes, packets: () => packets };
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

async function main(): Promise<void> {
  const server = await startServerUnderTest();
  const pid = server.pid;
  const pages = await startBlankPageServer();
  const browser = await launchChromium();
  const client = await connectKurento(server.url);
  const rows: string[][] = [];
  try {
    const pipeline = await client.create("MediaPipeline");
    const publisherEndpoint = await pipeline.create("WebRtcEndpoint");
    const page = await (await mediaContext(browser)).newPage();
    await page.goto(pages.url);
    const offer = await offerFromPage(page, "publish", publisherEndpoint);
    await acceptAnswer(page, await publisherEndpoint.processOffer(offer));
    await publisherEndpoint.gatherCandidates();
    await waitFor(
      async () => (await publisherEndpoint.getMediaState()) === "CONNECTED",
      20_000,
      "the publisher to connect",
    );

    const measure = async (label: string, subscribers: Subscriber[]) => {
      await sleep(WARMUP_SECONDS * 1000);
      const bytesBefore = subscribers.map((subscriber) => subscriber.bytes());
      const packetsBefore = subscribers.reduce((sum, subscriber) => sum + subscriber.packets(), 0);
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
      rows.push([
        label,
        cpuPercent.toFixed(1),
        (after.rssKb / 1024).toFixed(0),
        (((publisherAfter.bytesSent - publisherBefore.bytesSent) * 8) / seconds / 1000).toFixed(0),
        `${(publisherAfter.availableOutgoingBitrate / 1000).toFixed(0)} / ${(publisherAfter.targetBitrate / 1000).toFixed(0)}`,
        `${publisherAfter.frameWidth}x${publisherAfter.frameHeight}@${publisherAfter.framesPerSecond}`,
        averageKbps.toFixed(0),
        minKbps.toFixed(0),
        ((averageKbps * subscribers.length) / 1000).toFixed(2),
        forwarded > 0 ? (cpuMicros / forwarded).toFixed(0) : "-",
      ]);
      process.stderr.write(`measured: ${label}\n`);
    };

    await measure("publisher only", []);
    for (const count of SUBSCRIBER_COUNTS) {
      const subscribers: Subscriber[] = [];
      for (let index = 0; index < count; index += 1) subscribers.push(await addSubscriber(pipeline, publisherEndpoint));
      await waitFor(
        () => subscribers.every((subscriber) => subscriber.bytes() > 10_000),
        30_000,
        `${count} subscribers receiving`,
      );
      await measure(`${count} subscriber${count === 1 ? "" : "s"}`, subscribers);
      for (const subscriber of subscribers) {
        await subscriber.endpoint.release();
        await subscriber.peer.close();
      }
    }
    await pipeline.release();
  } finally {
    client.close();
    await closeChromium(browser);
    await pages.close();
    await server.stop();
  }

  const header = [
    "load",
    "server CPU % of one core",
    "server RSS MB",
    "publisher video kbps",
    "publisher BWE / target kbps",
    "publisher video",
    "per-subscriber kbps (avg)",
    "(min)",
    "total forwarded Mbps",
    "server CPU µs per forwarded packet",
  ];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, column) => cell.padStart(widths[column] ?? 0)).join(" | ")} |`;
  console.log(
    `\n${server.name}, ${MEASURE_SECONDS} s per row after ${WARMUP_SECONDS} s warm-up; publisher: Chromium fake camera 640x480 + audio; subscribers: werift peers (audio + video)`,
  );
  console.log(line(header));
  console.log(`|${widths.map((width) => "-".repeat(width + 2)).join("|")}|`);
  for (const row of rows) console.log(line(row));
  process.exit(0);
}

await main();
