// Benchmark of recording in the embedded media server (not a test): one werift
// publisher sends a 640×480 VP8 stream at about 0.5 Mbit/s (a moving test
// pattern encoded by ffmpeg, looped) and Opus; the server's CPU is measured
// with nothing attached, forwarding the stream to one werift subscriber,
// recording it with a RecorderEndpoint (WEBM), and doing both. The server runs
// as a child process (`media-server/main.ts`), so /proc/<pid>/stat counts its
// CPU alone, as test/bench/media-server.ts measures it. Per packet is the
// server's CPU over the packets the publisher sent in the interval; the
// recording's file is checked with ffprobe at the end.
//
//   npm run bench:recording                     (MEASURE_SECONDS=10 by default)
//   MEDIA_BACKEND=kms npm run bench:recording   (the same load on a real KMS from KMS_HOME)

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { type RTCPeerConnection, type RTCRtpTransceiver, RtpHeader, RtpPacket } from "werift";
import { startKms } from "../../scripts/kms.ts";
import { mediaBackendFromEnv } from "../../scripts/system.ts";
import { freePort } from "../helpers/ports.ts";
import { probeMedia } from "../helpers/media-probe.ts";
import {
  connectKurento,
  iceCandidate,
  type KurentoMediaElement,
  type KurentoPipeline,
  type KurentoWebRtcEndpoint,
} from "../media-server/helpers/kurento.ts";
import { createClientPeer, waitFor } from "../media-server/helpers/werift-peer.ts";

const MEASURE_SECONDS = Number(process.env.MEASURE_SECONDS ?? 10);
const WARMUP_SECONDS = 3;
const CLOCK_TICKS = 100; // USER_HZ on Linux
const FPS = 30;
const VIDEO_KBPS = 500;
const CHUNK = 1100;
const OPUS_FRAME_MS = 20;

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

function rssMb(pid: number): number {
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(rss?.[1] ?? 0) / 1024;
}

/** Ten seconds of VP8 (libvpx, realtime) and Opus, encoded once; the frames and packets, in order. */
function encodeMedia(dir: string): { video: Buffer[]; audio: Buffer[] } {
  const ivf = join(dir, "clip.ivf");
  const ogg = join(dir, "tone.ogg");
  const quiet = ["-hide_banner", "-loglevel", "error"];
  execFileSync("ffmpeg", [
    ...quiet,
    ...["-f", "lavfi", "-i", `testsrc2=size=640x480:rate=${FPS}`, "-t", "10"],
    ...["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", String(FPS * 2)],
    ...["-b:v", `${VIDEO_KBPS}k`, "-minrate", `${VIDEO_KBPS}k`, "-maxrate", `${VIDEO_KBPS}k`, ivf],
  ]);
  execFileSync("ffmpeg", [
    ...quiet,
    ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10"],
    ...["-c:a", "libopus", "-b:a", "48k", "-frame_duration", String(OPUS_FRAME_MS), ogg],
  ]);
  const clip = readFileSync(ivf);
  const video: Buffer[] = [];
  for (let offset = clip.readUInt16LE(6); offset + 12 <= clip.length; ) {
    const size = clip.readUInt32LE(offset);
    video.push(clip.subarray(offset + 12, offset + 12 + size));
    offset += 12 + size;
  }
  // Ogg pages lace packets (a 255-byte segment continues one); the first two are Opus's headers.
  const tone = readFileSync(ogg);
  const audio: Buffer[] = [];
  let pending: Buffer[] = [];
  for (let offset = 0; offset + 27 <= tone.length; ) {
    const count = tone.readUInt8(offset + 26);
    let data = offset + 27 + count;
    for (const size of tone.subarray(offset + 27, offset + 27 + count)) {
      pending.push(tone.subarray(data, data + size));
      data += size;
      if (size < 255) {
        audio.push(Buffer.concat(pending));
        pending = [];
      }
    }
    offset = data;
  }
  return { video, audio: audio.slice(2) };
}

/** Sends the clip and the tone in a loop, paced by the wall clock; counts the RTP packets sent. */
function startPublishing(
  video: RTCRtpTransceiver,
  audio: RTCRtpTransceiver,
  media: { video: Buffer[]; audio: Buffer[] },
): { stop(): void; packets(): number } {
  const start = performance.now();
  let frames = 0;
  let opusFrames = 0;
  let videoSequence = 0;
  let packets = 0;
  const timer = setInterval(() => {
    const elapsed = performance.now() - start;
    for (; frames * (1000 / FPS) <= elapsed; frames += 1) {
      const frame = media.video[frames % media.video.length] ?? Buffer.alloc(0);
      const timestamp = (frames * (90_000 / FPS)) >>> 0;
      for (let at = 0; at < frame.length; at += CHUNK) {
        videoSequence = (videoSequence + 1) & 0xffff;
        const header = new RtpHeader({
          payloadType: 120,
          sequenceNumber: videoSequence,
          timestamp,
          marker: at + CHUNK >= frame.length,
        });
        const payload = Buffer.concat([Buffer.from([at === 0 ? 0x10 : 0x00]), frame.subarray(at, at + CHUNK)]);
        video.sender.sendRtp(new RtpPacket(header, payload)).catch(() => {});
        packets += 1;
      }
    }
    for (; opusFrames * OPUS_FRAME_MS <= elapsed; opusFrames += 1) {
      const header = new RtpHeader({
        payloadType: 109,
        sequenceNumber: opusFrames & 0xffff,
        timestamp: (opusFrames * 48 * OPUS_FRAME_MS) >>> 0,
      });
      const payload = media.audio[opusFrames % media.audio.length] ?? Buffer.alloc(0);
      audio.sender.sendRtp(new RtpPacket(header, payload)).catch(() => {});
      packets += 1;
    }
  }, 5);
  return { stop: () => clearInterval(timer), packets: () => packets };
}

interface ServerUnderTest {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

async function startServerUnderTest(): Promise<ServerUnderTest> {
  if (mediaBackendFromEnv() === "kms") {
    const kms = await startKms({ loopbackOnly: true });
    return { name: "Kurento Media Server (KMS_HOME)", url: kms.url, pid: kms.pid, stop: () => kms.stop() };
  }
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ["media-server/main.ts"], {
    env: { ...process.env, KMS_PORT: String(port), KMS_HOST: "127.0.0.1", KMS_ICE_LOOPBACK_ONLY: "1" },
    stdio: ["ignore", "inherit", "pipe"],
  });
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`media server exited with ${code}`)));
    child.stderr?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("Kurento protocol on")) resolve();
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("no server pid");
  return {
    name: "Embedded media server",
    url: `ws://127.0.0.1:${port}/kurento`,
    pid,
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

function trickle(endpoint: KurentoWebRtcEndpoint, peer: RTCPeerConnection): void {
  endpoint.on("IceCandidateFound", (event) => {
    void peer.addIceCandidate(event.candidate as { candidate: string; sdpMid: string; sdpMLineIndex: number });
  });
  peer.onIceCandidate.subscribe((candidate) => {
    if (!candidate) return;
    const init = candidate.toJSON();
    void endpoint.addIceCandidate(
      iceCandidate({ candidate: init.candidate ?? "", sdpMid: init.sdpMid, sdpMLineIndex: init.sdpMLineIndex }),
    );
  });
}

async function connectPeer(
  endpoint: KurentoWebRtcEndpoint,
  peer: RTCPeerConnection,
  direction: "sendonly" | "recvonly",
): Promise<{ video: RTCRtpTransceiver; audio: RTCRtpTransceiver }> {
  trickle(endpoint, peer);
  const video = peer.addTransceiver("video", { direction });
  const audio = peer.addTransceiver("audio", { direction });
  await peer.setLocalDescription(await peer.createOffer());
  await peer.setRemoteDescription({
    type: "answer",
    sdp: await endpoint.processOffer(peer.localDescription?.sdp ?? ""),
  });
  await endpoint.gatherCandidates();
  await waitFor(() => peer.connectionState === "connected", 30_000, `a ${direction} peer to connect`);
  return { video, audio };
}

interface Row {
  load: string;
  cpuPercent: number;
  rssMb: number;
  packetsPerSecond: number;
  microsPerPacket: number;
  /** Over "publisher only": what the load itself costs per published packet. */
  extraMicrosPerPacket: number;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bench-recording-"));
  const media = encodeMedia(dir);
  const server = await startServerUnderTest();
  const client = await connectKurento(server.url);
  const rows: Row[] = [];
  const peers: RTCPeerConnection[] = [];
  let publishing: ReturnType<typeof startPublishing> | undefined;
  let recording: { file: string; seconds: number; bytes: number } | undefined;
  try {
    const pipeline: KurentoPipeline = await client.create("MediaPipeline");
    const publisherEndpoint = await pipeline.create("WebRtcEndpoint");
    const publisher = createClientPeer();
    peers.push(publisher);
    const sending = await connectPeer(publisherEndpoint, publisher, "sendonly");
    const sender = startPublishing(sending.video, sending.audio, media);
    publishing = sender;

    const measure = async (load: string) => {
      await sleep(WARMUP_SECONDS * 1000);
      const ticksBefore = cpuTicks(server.pid);
      const packetsBefore = sender.packets();
      const at = performance.now();
      await sleep(MEASURE_SECONDS * 1000);
      const seconds = (performance.now() - at) / 1000;
      const cpuSeconds = (cpuTicks(server.pid) - ticksBefore) / CLOCK_TICKS;
      const packets = sender.packets() - packetsBefore;
      const microsPerPacket = (cpuSeconds * 1e6) / packets;
      rows.push({
        load,
        cpuPercent: (cpuSeconds / seconds) * 100,
        rssMb: rssMb(server.pid),
        packetsPerSecond: packets / seconds,
        microsPerPacket,
        extraMicrosPerPacket: microsPerPacket - (rows[0]?.microsPerPacket ?? microsPerPacket),
      });
      process.stderr.write(`measured: ${load}\n`);
    };

    await measure("publisher only");

    const subscriberEndpoint = await pipeline.create("WebRtcEndpoint");
    const subscriber = createClientPeer();
    peers.push(subscriber);
    let received = 0;
    subscriber.onTrack.subscribe((track) => track.onReceiveRtp.subscribe(() => (received += 1)));
    await publisherEndpoint.connect(subscriberEndpoint);
    await connectPeer(subscriberEndpoint, subscriber, "recvonly");
    await waitFor(() => received > 100, 30_000, "the subscriber receiving");
    await measure("forwarding to 1 subscriber");
    await publisherEndpoint.disconnect(subscriberEndpoint);

    const file = join(dir, "recording.webm");
    const recorder = (await pipeline.create("RecorderEndpoint", {
      uri: pathToFileURL(file).href,
      mediaProfile: "WEBM",
    })) as KurentoMediaElement & { record(): Promise<void>; stopAndWait(): Promise<void> };
    await publisherEndpoint.connect(recorder);
    await recorder.record();
    const recordAt = performance.now();
    await measure("recording (WEBM)");
    await publisherEndpoint.connect(subscriberEndpoint);
    await measure("recording + forwarding to 1 subscriber");
    await recorder.stopAndWait();
    recording = { file, seconds: (performance.now() - recordAt) / 1000, bytes: statSync(file).size };
    await pipeline.release();
  } finally {
    publishing?.stop();
    for (const peer of peers) await peer.close().catch(() => undefined);
    client.close();
    await server.stop();
  }

  const probe = recording ? await probeMedia(recording.file) : undefined;
  rmSync(dir, { recursive: true, force: true });
  const header = [
    "load",
    "server CPU % of one core",
    "RSS MB",
    "published packets/s",
    "CPU µs/packet",
    "vs publisher only",
  ];
  const cells = rows.map((row) => [
    row.load,
    row.cpuPercent.toFixed(1),
    row.rssMb.toFixed(0),
    row.packetsPerSecond.toFixed(0),
    row.microsPerPacket.toFixed(1),
    row === rows[0] ? "-" : `+${row.extraMicrosPerPacket.toFixed(1)}`,
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((row) => row[column]?.length ?? 0)));
  const line = (values: string[]) =>
    `| ${values.map((value, column) => value.padStart(widths[column] ?? 0)).join(" | ")} |`;
  console.log(
    `\n${server.name}, ${MEASURE_SECONDS} s per row after ${WARMUP_SECONDS} s warm-up; publisher: werift, VP8 640x480@${FPS} ~${VIDEO_KBPS} kbps + Opus 48 kbps`,
  );
  console.log(line(header));
  console.log(`|${widths.map((width) => "-".repeat(width + 2)).join("|")}|`);
  for (const row of cells) console.log(line(row));
  if (recording && probe) {
    console.log(
      `recording: ${probe.format}, ${probe.codecs.join(" + ")}, ${probe.durationSec.toFixed(2)} s in the file for ${recording.seconds.toFixed(2)} s recorded, ${((recording.bytes * 8) / recording.seconds / 1000).toFixed(0)} kbps`,
    );
  }
  console.log(
    JSON.stringify({
      bench: "recording",
      server: server.name,
      measureSeconds: MEASURE_SECONDS,
      rows: rows.map((row) => ({
        load: row.load,
        cpuPercent: Number(row.cpuPercent.toFixed(2)),
        rssMb: Number(row.rssMb.toFixed(1)),
        packetsPerSecond: Number(row.packetsPerSecond.toFixed(1)),
        microsPerPacket: Number(row.microsPerPacket.toFixed(2)),
        extraMicrosPerPacket: Number(row.extraMicrosPerPacket.toFixed(2)),
      })),
      recording:
        recording && probe
          ? {
              format: probe.format,
              codecs: probe.codecs,
              fileSeconds: probe.durationSec,
              recordedSeconds: Number(recording.seconds.toFixed(2)),
              bytes: recording.bytes,
            }
          : null,
    }),
  );
  process.exit(0);
}

await main();
