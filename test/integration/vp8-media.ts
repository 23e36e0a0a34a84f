/**
 * Real VP8 video for werift peers standing in for browsers. The embedded
 * media server forwards any RTP (the tests mark packets and count the marks),
 * but a real KMS depayloads, parses and payloads VP8 again: only frames a
 * VP8 decoder accepts get through. So a publisher sends a clip encoded by
 * ffmpeg (libvpx), packetized per RFC 7741. Not a test file.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RtpHeader, RtpPacket, type RTCRtpTransceiver } from "werift";

const FPS = 15;
/** VP8 payload bytes per RTP packet (plus one descriptor byte): well under any MTU. */
const CHUNK = 1000;

let clip: Buffer[] | undefined;

/** Three seconds of a moving test pattern, 320×240 at 15 fps, a keyframe every second: one Buffer per frame (made once). */
export function vp8Frames(): Buffer[] {
  clip ??= encodeClip();
  return clip;
}

function encodeClip(): Buffer[] {
  const dir = mkdtempSync(join(tmpdir(), "vp8-clip-"));
  try {
    const file = join(dir, "clip.ivf");
    execFileSync(
      "ffmpeg",
      [
        ...["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", `testsrc=size=320x240:rate=${FPS}`],
        ...["-t", "3", "-c:v", "libvpx", "-deadline", "realtime", "-g", String(FPS), "-b:v", "300k", file],
      ],
      { stdio: ["ignore", "ignore", "pipe"], timeout: 60_000 },
    );
    return ivfFrames(readFileSync(file));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The frames of an IVF file: a 32-byte file header, then per frame a 12-byte header (size, timestamp) and the frame. */
function ivfFrames(ivf: Buffer): Buffer[] {
  if (ivf.subarray(0, 4).toString("latin1") !== "DKIF") throw new Error("not an IVF file");
  const frames: Buffer[] = [];
  let offset = ivf.readUInt16LE(6);
  while (offset + 12 <= ivf.length) {
    const size = ivf.readUInt32LE(offset);
    frames.push(ivf.subarray(offset + 12, offset + 12 + size));
    offset += 12 + size;
  }
  if (frames.length === 0) throw new Error("the IVF file has no frames");
  return frames;
}

/** Sends `frames` in a loop at 15 fps on the transceiver's sender; stop() ends it. */
export function startVp8Media(transceiver: RTCRtpTransceiver, frames: readonly Buffer[]): { stop(): void } {
  let sequenceNumber = 1000;
  let timestamp = 5000;
  let index = 0;
  const timer = setInterval(() => {
    const frame = frames[index % frames.length]!;
    index += 1;
    timestamp = (timestamp + 90_000 / FPS) >>> 0;
    for (let start = 0; start < frame.length; start += CHUNK) {
      const last = start + CHUNK >= frame.length;
      sequenceNumber = (sequenceNumber + 1) & 0xffff;
      // RFC 7741 payload descriptor, one byte: S (start of a partition) on the frame's first packet, partition 0.
      const descriptor = Buffer.from([start === 0 ? 0x10 : 0x00]);
      const header = new RtpHeader({ payloadType: 120, sequenceNumber, timestamp, marker: last });
      const payload = Buffer.concat([descriptor, frame.subarray(start, start + CHUNK)]);
      transceiver.sender.sendRtp(new RtpPacket(header, payload)).catch(() => {});
    }
  }, 1000 / FPS);
  return { stop: () => clearInterval(timer) };
}
