// Benchmark of the embedded media server's filter pipeline (not a test): the
// face clip (test/e2e/helpers/face-clip.ts's photo) as VP8 at 15 fps into one
// GStreamer child, as a FaceOverlayFilter with the demo's hat runs it, at
// 320×240 and 640×480, and the same without the face overlay (`identity`:
// decode and encode only). CPU is the child's own (/proc/<pid>/stat) over
// MEASURE_SECONDS; forwarding without a filter costs no child at all (README,
// Benchmarks, for the server's forwarding cost).
//
//   FACE_IMAGE=<astronaut.png> npx node test/bench/filters.ts     (MEASURE_SECONDS=10 by default)

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { RtpHeader, RtpPacket } from "werift";
import { GstVideoPipeline } from "../../media-server/objects/filters/gstreamer.ts";
import { overlaySvg } from "../../media-server/objects/filters/overlay-image.ts";
import { FPS, faceClip } from "../media-server/helpers/filter-media.ts";

const MEASURE_SECONDS = Number(process.env.MEASURE_SECONDS ?? "10");
const CLOCK_TICKS = 100;
const CHUNK = 1000;

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return Number(fields[11]) + Number(fields[12]);
}

async function measure(width: number, height: number, filter: readonly string[]): Promise<string> {
  const { frames } = faceClip(width, height);
  let outputPackets = 0;
  const pipeline = new GstVideoPipeline(filter, {
    output: () => {
      outputPackets += 1;
    },
    exited: (detail) => console.error(detail),
  });
  let sequenceNumber = 1;
  let timestamp = 0;
  let index = 0;
  const timer = setInterval(() => {
    const frame = frames[index++ % frames.length];
    if (!frame) return;
    timestamp = (timestamp + 90_000 / FPS) >>> 0;
    for (let start = 0; start < frame.length; start += CHUNK) {
      const header = new RtpHeader({
        payloadType: 96,
        sequenceNumber: sequenceNumber++ & 0xffff,
        timestamp,
        marker: start + CHUNK >= frame.length,
      });
      const payload = Buffer.concat([Buffer.from([start === 0 ? 0x10 : 0]), frame.subarray(start, start + CHUNK)]);
      pipeline.write(new RtpPacket(header, payload).serialize());
    }
  }, 1000 / FPS);
  try {
    const pid = pipeline.pid;
    if (pid === undefined) throw new Error("gst-launch-1.0 did not start");
    await sleep(3000);
    const ticks = cpuTicks(pid);
    const startedAt = Date.now();
    const packetsBefore = outputPackets;
    await sleep(MEASURE_SECONDS * 1000);
    const seconds = (Date.now() - startedAt) / 1000;
    const cpu = (100 * (cpuTicks(pid) - ticks)) / CLOCK_TICKS / seconds;
    const rate = (outputPackets - packetsBefore) / seconds;
    return `${cpu.toFixed(1)} % of one core, ${rate.toFixed(0)} RTP packets/s out`;
  } finally {
    clearInterval(timer);
    await pipeline.stop();
  }
}

const dir = mkdtempSync(join(tmpdir(), "filter-bench-"));
try {
  const hat = join(dir, "hat.svg");
  writeFileSync(hat, await overlaySvg(new URL("../../web/public/img/mario-wings.png", import.meta.url)));
  const faceOverlay = ["faceoverlay", `location="${hat}"`, "x=-0.35", "y=-1.2", "w=1.6", "h=1.6"];
  for (const [width, height] of [
    [320, 240],
    [640, 480],
  ] as const) {
    console.log(`${width}×${height} hat (FaceOverlayFilter): ${await measure(width, height, faceOverlay)}`);
    console.log(`${width}×${height} decode + encode only: ${await measure(width, height, ["identity"])}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
