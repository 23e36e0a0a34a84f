// Pieces shared by the media benchmarks (test/bench/media-server.ts,
// test/bench/simulcast.ts): the embedded media server as a child process
// sampled from /proc, werift subscribers that count what they receive, the
// publishing page's camera and encoder cap, and the printed table.

import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { Browser, BrowserContext, Page } from "playwright-core";
import type { RTCPeerConnection as WeriftPeer } from "werift";
import { freePort } from "../helpers/ports.ts";
import { iceCandidate, type KurentoPipeline, type KurentoWebRtcEndpoint } from "../media-server/helpers/kurento.ts";
import { createClientPeer } from "../media-server/helpers/werift-peer.ts";

export const CLOCK_TICKS = 100; // USER_HZ on Linux

export interface Sample {
  cpuTicks: number;
  rssKb: number;
  at: number;
}

export function sample(pid: number): Sample {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return { cpuTicks, rssKb: Number(rss?.[1] ?? 0), at: performance.now() };
}

/** `media-server/main.ts` as a child process on 127.0.0.1 with MEDIA_FORWARDING=<mode>; resolves once it listens. */
export async function startServerProcess(port: number, mode: string, nodeArgs: string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, "media-server/main.ts"], {
    env: {
      ...process.env,
      KMS_PORT: String(port),
      KMS_HOST: "127.0.0.1",
      KMS_ICE_LOOPBACK_ONLY: "1",
      MEDIA_FORWARDING: mode,
    },
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

/** The media server under test: its URL, the PID to sample, and how to stop it. */
export interface ServerUnderTest {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** The embedded media server on a free port, as a child process of its own (`nodeArgs`: e.g. --cpu-prof). */
export async function startEmbeddedServer(mode: string, nodeArgs: string[] = []): Promise<ServerUnderTest> {
  const port = await freePort();
  const child = await startServerProcess(port, mode, nodeArgs);
  const pid = child.pid;
  if (pid === undefined) throw new Error("no server pid");
  return {
    name: `Embedded media server, MEDIA_FORWARDING=${mode}`,
    url: `ws://127.0.0.1:${port}/kurento`,
    pid,
    async stop() {
      // Wait for the exit: under --cpu-prof the profile is written then.
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(15_000)]);
    },
  };
}

/** Counts received RTP per SSRC with extended sequence numbers, so losses are counted across a sequence wrap. */
export class LossCounter {
  private readonly streams = new Map<number, { first: number; highest: number; received: number }>();

  receive(ssrc: number, sequenceNumber: number): void {
    const stream = this.streams.get(ssrc);
    if (!stream) {
      this.streams.set(ssrc, { first: sequenceNumber, highest: sequenceNumber, received: 1 });
      return;
    }
    // The extended number closest to the highest seen: handles wrap and reordering.
    const cycle = stream.highest - (stream.highest & 0xffff);
    let extended = cycle + sequenceNumber;
    if (extended - stream.highest > 0x8000) extended -= 0x10000;
    else if (stream.highest - extended > 0x8000) extended += 0x10000;
    if (extended > stream.highest) stream.highest = extended;
    stream.received += 1;
  }

  totals(): { expected: number; received: number } {
    let expected = 0;
    let received = 0;
    for (const stream of this.streams.values()) {
      expected += stream.highest - stream.first + 1;
      received += stream.received;
    }
    return { expected, received };
  }

  /** Starts a new measurement window (the next packet of each stream becomes its first). */
  reset(): void {
    this.streams.clear();
  }
}

export interface Subscriber {
  endpoint: KurentoWebRtcEndpoint;
  peer: WeriftPeer;
  /** RTP bytes (header + payload) received, audio and video. */
  bytes: () => number;
  /** RTP bytes received on the video track alone. */
  videoBytes: () => number;
  packets: () => number;
  loss: LossCounter;
}

/** A werift peer in this process receiving `source`'s audio and video (recvonly) through a new WebRtcEndpoint. */
/** Packets lost across all subscribers' streams since their last reset, in per cent. */
export function lossPercentOf(subscribers: readonly Subscriber[]): number {
  let expected = 0;
  let received = 0;
  for (const subscriber of subscribers) {
    const totals = subscriber.loss.totals();
    expected += totals.expected;
    received += totals.received;
  }
  return expected > 0 ? Math.max(0, ((expected - received) / expected) * 100) : 0;
}

export async function addSubscriber(pipeline: KurentoPipeline, source: KurentoWebRtcEndpoint): Promise<Subscriber> {
  const endpoint = await pipeline.create("WebRtcEndpoint");
  const peer = createClientPeer();
  const loss = new LossCounter();
  let bytes = 0;
  let videoBytes = 0;
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
    const video = track.kind === "video";
    track.onReceiveRtp.subscribe((packet) => {
      const size = packet.payload.length + packet.header.serializeSize;
      bytes += size;
      if (video) videoBytes += size;
      packets += 1;
      loss.receive(packet.header.ssrc, packet.header.sequenceNumber);
    });
  });
  peer.addTransceiver("audio", { direction: "recvonly" });
  peer.addTransceiver("video", { direction: "recvonly" });
  await peer.setLocalDescription(await peer.createOffer());
  await source.connect(endpoint);
  const answer = await endpoint.processOffer(peer.localDescription?.sdp ?? "");
  await peer.setRemoteDescription({ type: "answer", sdp: answer });
  await endpoint.gatherCandidates();
  return { endpoint, peer, bytes: () => bytes, videoBytes: () => videoBytes, packets: () => packets, loss };
}

/**
 * A context whose fake camera really delivers `width`×`height` at 30 fps: the shared test helper caps it at
 * 320×240, 15 fps (several pages on two cores), which made an earlier run forward only ~150 kbps.
 */
export async function cameraContext(
  browser: Browser,
  size: { width: number; height: number },
): Promise<BrowserContext> {
  const context = await browser.newContext({ permissions: ["camera", "microphone"] });
  await context.addInitScript(({ width, height }) => {
    const devices = navigator.mediaDevices;
    if (!devices?.getUserMedia) return;
    const original = devices.getUserMedia.bind(devices);
    devices.getUserMedia = (constraints?: MediaStreamConstraints) =>
      original(
        constraints?.video
          ? { ...constraints, video: { width: { exact: width }, height: { exact: height }, frameRate: { ideal: 30 } } }
          : constraints,
      );
  }, size);
  return context;
}

/** Caps the page's video encoder (every encoding) so the forwarded stream stays near this whatever the bandwidth estimate allows. */
export async function capPublisherBitrate(page: Page, bitsPerSecond: number): Promise<void> {
  await page.evaluate(async (maxBitrate) => {
    const pc = (window as unknown as { pc: RTCPeerConnection }).pc;
    for (const sender of pc.getSenders()) {
      if (sender.track?.kind !== "video") continue;
      const parameters = sender.getParameters();
      for (const encoding of parameters.encodings) encoding.maxBitrate = maxBitrate;
      await sender.setParameters(parameters);
    }
  }, bitsPerSecond);
}

/** Prints a Markdown table, every column right-aligned to its widest cell. */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, column) => cell.padStart(widths[column] ?? 0)).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((width) => "-".repeat(width + 2)).join("|")}|`);
  for (const row of rows) console.log(line(row));
}
