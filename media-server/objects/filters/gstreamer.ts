/**
 * GStreamer, as KMS uses it for its filters, run as a supervised child
 * process per filter (`gst-launch-1.0`): no maintained Node binding exists
 * (gstreamer-superficial and node-gtk are native addons that lag Node
 * releases), and a child process keeps a crashing element out of the
 * server. Media crosses over pipes, never a port: RTP in on fd 3 and out on
 * fd 4, RTCP (keyframe requests for the encoder) in on fd 5, each packet
 * framed by a 2-byte length (RFC 4571, GStreamer's rtpstreampay/depay).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { z } from "zod";

const GST_LAUNCH = "gst-launch-1.0";
const GST_INSPECT = "gst-inspect-1.0";
/** What every filter pipeline needs around its filter: framing, VP8 in and out, the RTCP session. */
const TRANSPORT_ELEMENTS = [
  "fdsrc",
  "fdsink",
  "rtpstreamdepay",
  "rtpstreampay",
  "rtpvp8depay",
  "rtpvp8pay",
  "rtpsession",
  "vp8dec",
  "vp8enc",
  "videoconvert",
  "queue",
] as const;
/** FaceOverlayFilter: gst-plugins-bad's faceoverlay (facedetect from gstreamer1.0-opencv, rsvgoverlay). */
const FACE_ELEMENTS = ["faceoverlay", "facedetect", "rsvgoverlay"] as const;

/** `KMS_FILTERS=off` hides the filters even when GStreamer is installed (to try what a machine without it sees). */
const filtersEnv = z.object({ KMS_FILTERS: z.enum(["auto", "off"]).default("auto") });

export interface FilterSupport {
  /** GStreamerFilter can be created. */
  readonly gstreamerFilter: boolean;
  /** FaceOverlayFilter can be created. */
  readonly faceOverlay: boolean;
  /** Why not, when one of them cannot: the missing elements or files. */
  readonly missing: readonly string[];
}

export interface ElementInfo {
  readonly klass: string;
  /** Pad templates present on every instance (what KMS's "pad templates don't match" check counts). */
  readonly alwaysSinkPads: number;
  readonly alwaysSrcPads: number;
  /** A GstBin (several elements), which KMS refuses as "only one element can be created". */
  readonly isBin: boolean;
  readonly properties: ReadonlySet<string>;
}

/** Pad templates from gst-inspect's "Pad Templates:" section: direction and availability of each. */
function alwaysPads(text: string, direction: "SINK" | "SRC"): number {
  const pattern = new RegExp(`${direction} template: '[^']*'\\s*\\n\\s*Availability: Always`, "g");
  return text.match(pattern)?.length ?? 0;
}

/** Property names, from the lines of "Element Properties:" that start a property (two spaces, name, colon). */
function propertyNames(text: string): Set<string> {
  const start = text.indexOf("Element Properties:");
  if (start < 0) return new Set();
  const section = text.slice(start);
  return new Set([...section.matchAll(/^ {2}([a-zA-Z][\w-]*)\s+: /gm)].map((match) => match[1] ?? ""));
}

const inspected = new Map<string, ElementInfo | null>();

/** What gst-inspect says about a GStreamer element; undefined when it is not installed. Cached per process. */
export function inspectElement(name: string): ElementInfo | undefined {
  const known = inspected.get(name);
  if (known !== undefined) return known ?? undefined;
  let info: ElementInfo | null = null;
  try {
    const text = execFileSync(GST_INSPECT, [name], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 20_000,
    });
    info = {
      klass: /^\s*Klass\s+(.+)$/m.exec(text)?.[1]?.trim() ?? "",
      alwaysSinkPads: alwaysPads(text, "SINK"),
      alwaysSrcPads: alwaysPads(text, "SRC"),
      isBin: /\+----GstBin\b/.test(text),
      properties: propertyNames(text),
    };
  } catch {
    info = null;
  }
  inspected.set(name, info);
  return info ?? undefined;
}

/** The Haar cascade facedetect loads by default (opencv-data); faceoverlay finds no face without it. */
function faceCascade(): string | undefined {
  try {
    const text = execFileSync(GST_INSPECT, ["facedetect"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 20_000,
    });
    const block = text.slice(text.search(/^\s*profile\s+:/m));
    return /Default:\s*"([^"]+)"/.exec(block)?.[1];
  } catch {
    return undefined;
  }
}

let support: FilterSupport | undefined;

/**
 * Which filters this machine can run, probed once per process (the first
 * `getInfo` or filter `create`): the GStreamer tools and every element the
 * pipelines use, and for the face overlay the Haar cascade too.
 */
export function filterSupport(env: NodeJS.ProcessEnv = process.env): FilterSupport {
  if (support) return support;
  const parsed = filtersEnv.safeParse(env);
  if (parsed.success && parsed.data.KMS_FILTERS === "off") {
    support = { gstreamerFilter: false, faceOverlay: false, missing: ["KMS_FILTERS=off"] };
    return support;
  }
  const missingTransport = TRANSPORT_ELEMENTS.filter((name) => !inspectElement(name));
  const missingFace: string[] = FACE_ELEMENTS.filter((name) => !inspectElement(name));
  if (missingFace.length === 0) {
    const cascade = faceCascade();
    if (!cascade || !existsSync(cascade)) missingFace.push(`the Haar cascade ${cascade ?? "(unknown)"} (opencv-data)`);
  }
  const gstreamerFilter = missingTransport.length === 0;
  support = {
    gstreamerFilter,
    faceOverlay: gstreamerFilter && missingFace.length === 0,
    missing: [...missingTransport, ...missingFace],
  };
  return support;
}

/** The Debian packages that provide everything above (README, .ci/run). */
export const GSTREAMER_PACKAGES =
  "gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-opencv opencv-data";

/** A 2-byte big-endian length, then the packet (RFC 4571). */
function frame(packet: Buffer): Buffer {
  const header = Buffer.allocUnsafe(2);
  header.writeUInt16BE(packet.length);
  return Buffer.concat([header, packet]);
}

/** Splits an RFC 4571 stream back into packets. */
class Deframer {
  private pending: Buffer = Buffer.alloc(0);
  private readonly packet: (packet: Buffer) => void;

  constructor(packet: (packet: Buffer) => void) {
    this.packet = packet;
  }

  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 2) {
      const length = this.pending.readUInt16BE(0);
      if (this.pending.length < 2 + length) break;
      this.packet(this.pending.subarray(2, 2 + length));
      this.pending = this.pending.subarray(2 + length);
    }
  }
}

/** RTCP the encoder's session understands as "send a keyframe": an empty RR, then a PLI (RFC 4585) for `mediaSsrc`. */
function pliCompound(senderSsrc: number, mediaSsrc: number): Buffer {
  const packet = Buffer.alloc(8 + 12);
  packet.writeUInt8(0x80, 0); // V=2, RC=0
  packet.writeUInt8(201, 1); // RR
  packet.writeUInt16BE(1, 2);
  packet.writeUInt32BE(senderSsrc, 4);
  packet.writeUInt8(0x81, 8); // V=2, FMT=1 (PLI)
  packet.writeUInt8(206, 9); // PSFB
  packet.writeUInt16BE(2, 10);
  packet.writeUInt32BE(senderSsrc, 12);
  packet.writeUInt32BE(mediaSsrc, 16);
  return packet;
}

/** The payload type inside the pipes; the server rewrites it per peer connection anyway. */
export const PIPE_PAYLOAD_TYPE = 96;
/** Bytes waiting for the child beyond which input is dropped rather than queued (latency over completeness). */
const MAX_BACKLOG_BYTES = 2 * 1024 * 1024;
const STOP_GRACE_MS = 3000;
const STDERR_LINES = 20;

export interface VideoPipelineHooks {
  /** One RTP packet (VP8) from the encoder. */
  output(packet: Buffer): void;
  /** The process ended without being asked to; `detail` holds its last stderr lines. */
  exited(detail: string): void;
}

function randomSsrc(): number {
  return (Math.random() * 0xffffffff) >>> 0 || 1;
}

/**
 * One `gst-launch-1.0` running `filter` on VP8 video: depayload, decode,
 * filter, encode with realtime settings, payload. A leaky one-frame queue
 * after the decoder drops frames instead of building latency when the
 * filter falls behind. The child runs in its own process group; if this
 * process dies, fd 3 closes, the pipeline sees end-of-stream and exits.
 */
export class GstVideoPipeline {
  /** The encoder's SSRC: new per process, so a restart reads as a new stream to subscribers. */
  readonly ssrc = randomSsrc();
  private readonly child: ChildProcess;
  private readonly input: Writable;
  private readonly rtcp: Writable;
  private readonly stderrLines: string[] = [];
  private readonly exit: Promise<void>;
  private stopping = false;
  private exited = false;

  constructor(filter: readonly string[], hooks: VideoPipelineHooks) {
    const caps = `media=video,clock-rate=90000,encoding-name=VP8,payload=${PIPE_PAYLOAD_TYPE}`;
    const args = [
      "-q",
      ...["fdsrc", "fd=3", "do-timestamp=true", "!", `application/x-rtp-stream,${caps}`, "!", "rtpstreamdepay"],
      ...["!", "rtpvp8depay", "wait-for-keyframe=true", "!", "vp8dec"],
      ...["!", "queue", "max-size-buffers=1", "max-size-bytes=0", "max-size-time=0", "leaky=downstream"],
      ...["!", "videoconvert", "!", ...filter, "!", "videoconvert"],
      ...["!", "vp8enc", "deadline=1", "cpu-used=8", "lag-in-frames=0", "end-usage=cbr", "target-bitrate=800000"],
      ...["keyframe-max-dist=3000", "error-resilient=default", "threads=1", "timebase=1/1000000000"],
      ...["!", "rtpvp8pay", `pt=${PIPE_PAYLOAD_TYPE}`, `ssrc=${this.ssrc}`, "mtu=1200", "picture-id-mode=15-bit"],
      ...["!", "session.send_rtp_sink", "rtpsession", "name=session"],
      ...["session.send_rtp_src", "!", "rtpstreampay", "!", "fdsink", "fd=4", "sync=false"],
      ...["fdsrc", "fd=5", "!", "application/x-rtcp-stream", "!", "rtpstreamdepay", "!", "session.recv_rtcp_sink"],
    ];
    this.child = spawn(GST_LAUNCH, args, {
      stdio: ["ignore", "ignore", "pipe", "pipe", "pipe", "pipe"],
      detached: true,
    });
    const stdio: ReadonlyArray<Readable | Writable | null | undefined> = this.child.stdio;
    const [, , stderr, input, output, rtcp] = stdio;
    this.input = input as Writable;
    this.rtcp = rtcp as Writable;
    // A child that died leaves broken pipes: those writes fail, the exit handler reports it.
    this.input.on("error", () => {});
    this.rtcp.on("error", () => {});
    const deframer = new Deframer((packet) => hooks.output(packet));
    (output as Readable).on("data", (chunk: Buffer) => deframer.push(chunk));
    (output as Readable).on("error", () => {});
    (stderr as Readable).setEncoding("utf8");
    (stderr as Readable).on("data", (text: string) => this.keepStderr(text));
    this.exit = new Promise((resolve) => {
      const done = (detail: string) => {
        if (this.exited) return;
        this.exited = true;
        resolve();
        if (!this.stopping) hooks.exited(`${detail}${this.stderrTail()}`);
      };
      this.child.once("exit", (code, signal) => done(`gst-launch-1.0 exited (${signal ?? `code ${code}`})`));
      this.child.once("error", (error) => done(`gst-launch-1.0 could not run: ${error.message}`));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return !this.exited;
  }

  /** One RTP packet (VP8, payload type PIPE_PAYLOAD_TYPE) for the decoder; dropped when the child lags far behind. */
  write(packet: Buffer): void {
    if (this.exited || this.input.writableLength > MAX_BACKLOG_BYTES) return;
    this.input.write(frame(packet));
  }

  /** Asks the encoder for a keyframe (a PLI its RTP session turns into a force-key-unit event). */
  requestKeyframe(): void {
    if (this.exited) return;
    this.rtcp.write(frame(pliCompound((this.ssrc ^ 0x5a5a5a5a) >>> 0, this.ssrc)));
  }

  /** Ends the process group (SIGTERM, then SIGKILL after a grace period) and waits for the exit. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.exited) return;
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), STOP_GRACE_MS);
    await this.exit;
    clearTimeout(timer);
  }

  private signal(signal: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined || this.exited) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // Already gone.
    }
  }

  private keepStderr(text: string): void {
    for (const line of text.split("\n")) {
      // OpenCV complains about optional cascades (nose, mouth, eyes) faceoverlay never uses.
      if (!line.trim() || line.includes("persistence.cpp")) continue;
      this.stderrLines.push(line);
      if (this.stderrLines.length > STDERR_LINES) this.stderrLines.shift();
    }
  }

  private stderrTail(): string {
    return this.stderrLines.length > 0 ? `: ${this.stderrLines.join(" | ")}` : "";
  }
}
