/**
 * Real pictures through a filter, for kurento-client tests on either media
 * server: a werift publisher sends VP8 encoded by ffmpeg (libvpx) from a
 * real face photograph, a werift subscriber reassembles the VP8 frames it
 * gets (RFC 7741) and ffmpeg decodes them to RGB for pixel checks. Not a
 * test file.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomInt } from "node:crypto";
import {
  PictureLossIndication,
  type RTCPeerConnection,
  type RTCRtpTransceiver,
  RtcpPayloadSpecificFeedback,
  RtpHeader,
  RtpPacket,
} from "werift";
import { faceImage } from "../../e2e/helpers/face-clip.ts";
import { iceCandidate, type KurentoWebRtcEndpoint } from "./kurento.ts";
import { createClientPeer, stripCandidates, waitFor } from "./werift-peer.ts";

export const FPS = 15;
const CHUNK = 1000;

/** A decoded picture, RGB, 3 bytes a pixel. */
export interface Picture {
  readonly width: number;
  readonly height: number;
  readonly rgb: Buffer;
}

/** The frames of an IVF file (32-byte header, then 12-byte frame headers). */
function ivfFrames(ivf: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  let offset = ivf.readUInt16LE(6);
  while (offset + 12 <= ivf.length) {
    const size = ivf.readUInt32LE(offset);
    frames.push(ivf.subarray(offset + 12, offset + 12 + size));
    offset += 12 + size;
  }
  return frames;
}

function ivfFile(frames: readonly Buffer[], width: number, height: number): Buffer {
  const header = Buffer.alloc(32);
  header.write("DKIF", 0, "latin1");
  header.writeUInt16LE(0, 4);
  header.writeUInt16LE(32, 6);
  header.write("VP80", 8, "latin1");
  header.writeUInt16LE(width, 12);
  header.writeUInt16LE(height, 14);
  header.writeUInt32LE(FPS, 16);
  header.writeUInt32LE(1, 20);
  header.writeUInt32LE(frames.length, 24);
  const parts: Buffer[] = [header];
  frames.forEach((frame, index) => {
    const frameHeader = Buffer.alloc(12);
    frameHeader.writeUInt32LE(frame.length, 0);
    frameHeader.writeBigUInt64LE(BigInt(index), 4);
    parts.push(frameHeader, frame);
  });
  return Buffer.concat(parts);
}

/** ffmpeg's filter for the face photo: her head and shoulders, low in a grey frame of `width`×`height` (4:3). */
export function faceFilter(width: number, height: number): string {
  const side = Math.round(height * 0.8);
  return `crop=256:256:100:0,scale=${side}:${side},pad=${width}:${height}:${Math.round(width * 0.2)}:${Math.round(height * 0.2)}:color=0x808080,format=yuv420p`;
}

/**
 * One second of the still face photo at `width`×`height` as VP8 frames (a
 * keyframe first, then one every 5 frames, so a filter's decoder starts
 * quickly whenever it joins), and the same picture decoded, as the reference.
 */
export function faceClip(width: number, height: number): { frames: Buffer[]; reference: Picture } {
  const dir = mkdtempSync(join(tmpdir(), "face-vp8-"));
  try {
    const ivf = join(dir, "face.ivf");
    execFileSync(
      "ffmpeg",
      [
        ...["-hide_banner", "-loglevel", "error", "-loop", "1", "-i", faceImage(), "-vf", faceFilter(width, height)],
        ...["-r", String(FPS), "-t", "1", "-c:v", "libvpx", "-deadline", "realtime", "-g", "5", "-b:v", "1500k", ivf],
      ],
      { stdio: ["ignore", "ignore", "pipe"], timeout: 60_000 },
    );
    const raw = execFileSync(
      "ffmpeg",
      ["-hide_banner", "-loglevel", "error", "-i", ivf, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
      { stdio: ["ignore", "pipe", "pipe"], timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
    );
    return { frames: ivfFrames(readFileSync(ivf)), reference: { width, height, rgb: raw } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The same picture through GStreamer's videoflip, decoded: what a `videoflip method=horizontal-flip` filter must show. */
export function mirrored(picture: Picture): Picture {
  const rgb = Buffer.alloc(picture.rgb.length);
  for (let y = 0; y < picture.height; y++) {
    for (let x = 0; x < picture.width; x++) {
      const from = (y * picture.width + x) * 3;
      const to = (y * picture.width + (picture.width - 1 - x)) * 3;
      picture.rgb.copy(rgb, to, from, from + 3);
    }
  }
  return { ...picture, rgb };
}

/** Sends VP8 frames one at a time (RFC 7741, one-byte descriptor), with continuous sequence numbers and timestamps. */
export interface Vp8Sender {
  send(frame: Buffer): void;
}

/** One per publisher: a second one would start its sequence numbers over, and KMS drops what looks old. */
export function vp8Sender(transceiver: RTCRtpTransceiver): Vp8Sender {
  let sequenceNumber = 1000;
  let timestamp = 5000;
  return {
    send(frame) {
      timestamp = (timestamp + 90_000 / FPS) >>> 0;
      for (let start = 0; start < frame.length; start += CHUNK) {
        sequenceNumber = (sequenceNumber + 1) & 0xffff;
        const header = new RtpHeader({
          payloadType: 120,
          sequenceNumber,
          timestamp,
          marker: start + CHUNK >= frame.length,
        });
        const payload = Buffer.concat([Buffer.from([start === 0 ? 0x10 : 0x00]), frame.subarray(start, start + CHUNK)]);
        transceiver.sender.sendRtp(new RtpPacket(header, payload)).catch(() => {});
      }
    },
  };
}

/** Sends `frames` in a loop at FPS; `sent()` counts frames sent. */
export function sendVp8(sender: Vp8Sender, frames: readonly Buffer[]): { stop(): void; sent(): number } {
  let index = 0;
  const timer = setInterval(() => {
    const frame = frames[index % frames.length];
    if (!frame) return;
    index += 1;
    sender.send(frame);
  }, 1000 / FPS);
  return { stop: () => clearInterval(timer), sent: () => index };
}

/**
 * Latency through the server: with no other video flowing, one keyframe is
 * sent and the time until the subscriber has the next whole frame is taken;
 * `samples` times, a second apart, the median returned. The filter makes
 * one frame of each, so which output belongs to which input is never in
 * doubt.
 */
export async function frameLatencyMs(
  sender: Vp8Sender,
  subscriber: { frames: ReceivedFrame[] },
  keyframe: Buffer,
  samples: number,
  waitMs: number,
): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const before = subscriber.frames.length;
    const sentAt = Date.now();
    sender.send(keyframe);
    await waitFor(() => subscriber.frames.length > before, waitMs, "the frame at the subscriber");
    times.push((subscriber.frames[before]?.at ?? sentAt) - sentAt);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? 0;
}

/** Trickle ICE both ways between a server endpoint (kurento-client) and a werift peer. */
function trickle(endpoint: KurentoWebRtcEndpoint, peer: RTCPeerConnection): void {
  endpoint.on("IceCandidateFound", (event) => {
    const candidate = event.candidate as { candidate: string; sdpMid: string; sdpMLineIndex: number };
    peer.addIceCandidate(candidate).catch(() => {});
  });
  peer.onIceCandidate.subscribe((candidate) => {
    if (!candidate) return;
    const init = candidate.toJSON();
    endpoint
      .addIceCandidate(
        iceCandidate({ candidate: init.candidate ?? "", sdpMid: init.sdpMid, sdpMLineIndex: init.sdpMLineIndex }),
      )
      .catch(() => {});
  });
}

/** A werift publisher of video (sendonly) negotiated with `endpoint`. */
export async function publisherPeer(
  endpoint: KurentoWebRtcEndpoint,
): Promise<{ peer: RTCPeerConnection; video: RTCRtpTransceiver }> {
  const peer = createClientPeer();
  trickle(endpoint, peer);
  const video = peer.addTransceiver("video", { direction: "sendonly" });
  await peer.setLocalDescription(await peer.createOffer());
  const answer = await endpoint.processOffer(stripCandidates(peer.localDescription?.sdp ?? ""));
  await peer.setRemoteDescription({ type: "answer", sdp: answer });
  await endpoint.gatherCandidates();
  return { peer, video };
}

/** VP8 frames a subscriber reassembled, in order, with their arrival times. */
export interface ReceivedFrame {
  readonly data: Buffer;
  readonly keyframe: boolean;
  readonly at: number;
}

/** The VP8 payload of an RTP packet (RFC 7741 descriptor skipped), and whether it starts a frame. */
function vp8Payload(packet: RtpPacket): { start: boolean; data: Buffer } {
  const payload = packet.payload;
  let offset = 1;
  const first = payload[0] ?? 0;
  if (first & 0x80) {
    const extension = payload[1] ?? 0;
    offset = 2;
    if (extension & 0x80) offset += (payload[offset] ?? 0) & 0x80 ? 2 : 1;
    if (extension & 0x40) offset += 1;
    if (extension & 0x30) offset += 1;
  }
  return { start: (first & 0x10) !== 0 && (first & 0x07) === 0, data: payload.subarray(offset) };
}

/** A werift subscriber (recvonly video) negotiated with `endpoint`; it reassembles every VP8 frame it receives. */
export async function subscriberPeer(endpoint: KurentoWebRtcEndpoint): Promise<{
  peer: RTCPeerConnection;
  frames: ReceivedFrame[];
  requestKeyframe(): Promise<void>;
}> {
  const peer = createClientPeer();
  trickle(endpoint, peer);
  const transceiver = peer.addTransceiver("video", { direction: "recvonly" });
  const frames: ReceivedFrame[] = [];
  let parts: Buffer[] = [];
  let expected: number | undefined;
  let ssrc: number | undefined;
  const pliSenderSsrc = randomInt(1, 0xffffffff);
  peer.onTrack.subscribe((track) => {
    track.onReceiveRtp.subscribe((packet) => {
      ssrc = packet.header.ssrc;
      const { start, data } = vp8Payload(packet);
      if (start) parts = [];
      else if (expected !== packet.header.sequenceNumber) parts = [];
      expected = (packet.header.sequenceNumber + 1) & 0xffff;
      if (!start && parts.length === 0) return;
      parts.push(data);
      if (packet.header.marker) {
        const frame = Buffer.concat(parts);
        parts = [];
        frames.push({ data: frame, keyframe: ((frame[0] ?? 1) & 0x01) === 0, at: Date.now() });
      }
    });
  });
  await peer.setLocalDescription(await peer.createOffer());
  const answer = await endpoint.processOffer(stripCandidates(peer.localDescription?.sdp ?? ""));
  await peer.setRemoteDescription({ type: "answer", sdp: answer });
  await endpoint.gatherCandidates();
  return {
    peer,
    frames,
    // werift's own sendRtcpPLI uses the receiver's RTCP SSRC, which this peer also signals for its
    // (unused) sender; the server's werift routes feedback by that sender SSRC first, to its receiver,
    // and drops it. A PLI from an SSRC of its own reaches the server's sender, as a browser's does.
    requestKeyframe: async () => {
      if (ssrc === undefined) return;
      const pli = new RtcpPayloadSpecificFeedback({
        feedback: new PictureLossIndication({ senderSsrc: pliSenderSsrc, mediaSsrc: ssrc }),
      });
      await transceiver.receiver.dtlsTransport.sendRtcp([pli]);
    },
  };
}

/** Width and height a VP8 keyframe declares (RFC 6386 frame header). */
export function keyframeSize(frame: Buffer): { width: number; height: number } {
  return { width: frame.readUInt16LE(6) & 0x3fff, height: frame.readUInt16LE(8) & 0x3fff };
}

/**
 * The picture shown after `count` frames from the newest keyframe on
 * (asked for with a PLI, so this also proves keyframe requests reach
 * whoever encodes): decoded by ffmpeg in a child process, so the servers
 * in this process keep running meanwhile.
 */
export async function freshPicture(
  subscriber: Awaited<ReturnType<typeof subscriberPeer>>,
  waitMs: number,
  count = 5,
): Promise<Picture> {
  const from = subscriber.frames.length;
  await subscriber.requestKeyframe();
  let start = -1;
  await waitFor(
    () => {
      start = subscriber.frames.findIndex((frame, index) => index >= from && frame.keyframe);
      return start >= 0 && subscriber.frames.length >= start + count;
    },
    waitMs,
    "a keyframe and the frames after it at the subscriber",
  );
  const frames = subscriber.frames.slice(start, start + count).map((frame) => frame.data);
  const { width, height } = keyframeSize(frames[0] ?? Buffer.alloc(10));
  const rgb = await decodeLast(ivfFile(frames, width, height), width * height * 3);
  return { width, height, rgb };
}

async function decodeLast(ivf: Buffer, frameBytes: number): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), "vp8-out-"));
  const file = join(dir, "out.ivf");
  writeFileSync(file, ivf);
  try {
    const raw = await new Promise<Buffer>((resolve, reject) => {
      const child = spawn(
        "ffmpeg",
        ["-hide_banner", "-loglevel", "error", "-i", file, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        {
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      const chunks: Buffer[] = [];
      let errors = "";
      child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
      child.stderr.on("data", (chunk: Buffer) => {
        errors += chunk.toString();
      });
      child.on("error", reject);
      child.on("close", (code) =>
        code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`ffmpeg failed (${code}): ${errors}`)),
      );
    });
    if (raw.length < frameBytes) throw new Error(`ffmpeg decoded ${raw.length} bytes, less than one frame`);
    return raw.subarray(raw.length - frameBytes);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Pixels that differ from `reference` by more than codec noise (sum of channel differences over `threshold`). */
export function changedMask(picture: Picture, reference: Picture, threshold = 90): Uint8Array {
  if (picture.width !== reference.width || picture.height !== reference.height) {
    throw new Error(
      `size ${picture.width}x${picture.height} differs from the reference's ${reference.width}x${reference.height}`,
    );
  }
  const mask = new Uint8Array(picture.width * picture.height);
  for (let i = 0; i < mask.length; i++) {
    const o = i * 3;
    const d =
      Math.abs((picture.rgb[o] ?? 0) - (reference.rgb[o] ?? 0)) +
      Math.abs((picture.rgb[o + 1] ?? 0) - (reference.rgb[o + 1] ?? 0)) +
      Math.abs((picture.rgb[o + 2] ?? 0) - (reference.rgb[o + 2] ?? 0));
    mask[i] = d > threshold ? 1 : 0;
  }
  return mask;
}

export interface Box {
  readonly left: number;
  readonly top: number;
  readonly right: number;
  readonly bottom: number;
  /** Changed pixels inside, as a share of the whole picture. */
  readonly share: number;
}

/**
 * The box around the changed pixels, ignoring stray ones: a row or column
 * counts only when at least `minRun` of its pixels changed (codec noise
 * along edges changes a few isolated pixels, the hat whole runs).
 */
export function changedBox(mask: Uint8Array, width: number, height: number, minRun = 4): Box | undefined {
  const rows = new Array<number>(height).fill(0);
  const columns = new Array<number>(width).fill(0);
  let total = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (mask[y * width + x]) {
        rows[y] = (rows[y] ?? 0) + 1;
        columns[x] = (columns[x] ?? 0) + 1;
        total += 1;
      }
    }
  }
  // The densest band of consecutive rows (columns) with changes, so that a few blocks of codec
  // noise elsewhere in a frame decoded under load do not stretch the box to the edge.
  // A row (column) counts when at least 2 % of its pixels changed: the hat changes far more,
  // codec ringing along the photo's edges in a busy run a handful.
  const rowBand = densestBand(rows, Math.max(minRun, Math.round(width * 0.02)));
  const columnBand = densestBand(columns, Math.max(minRun, Math.round(height * 0.02)));
  if (!rowBand || !columnBand) return undefined;
  const [top, bottom] = rowBand;
  const [left, right] = columnBand;
  return { left, top, right, bottom, share: total / (width * height) };
}

/** The run of consecutive indices with `counts[i] >= min` whose counts add up to the most, as [first, last]. */
function densestBand(counts: readonly number[], min: number): [number, number] | undefined {
  let best: [number, number] | undefined;
  let bestSum = 0;
  let start = -1;
  let sum = 0;
  for (let i = 0; i <= counts.length; i++) {
    const count = counts[i] ?? 0;
    if (i < counts.length && count >= min) {
      if (start < 0) start = i;
      sum += count;
      continue;
    }
    if (start >= 0 && sum > bestSum) {
      best = [start, i - 1];
      bestSum = sum;
    }
    start = -1;
    sum = 0;
  }
  return best;
}

/** Mean absolute difference per channel between two pictures of the same size (codec noise is a few units). */
export function meanDifference(a: Picture, b: Picture): number {
  let sum = 0;
  for (let i = 0; i < a.rgb.length; i++) sum += Math.abs((a.rgb[i] ?? 0) - (b.rgb[i] ?? 0));
  return sum / a.rgb.length;
}

/** Writes a picture as a PPM (any image viewer opens it) for a person to look at. */
export function savePicture(picture: Picture, path: string): void {
  writeFileSync(
    path,
    Buffer.concat([Buffer.from(`P6\n${picture.width} ${picture.height}\n255\n`, "latin1"), picture.rgb]),
  );
}
