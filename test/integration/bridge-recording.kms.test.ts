/**
 * Recording on a real KMS 7.2 (KMS only: the embedded media server's run is
 * bridge-recording.test.ts): the bridge's room media, through the real
 * kurento-client, records a werift publisher sending real VP8, ends the
 * file, and uploads it to a local stand-in of the worker's upload API;
 * ffprobe reads a VP8 WebM as long as the recording lasted.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type KmsHandle, startKms } from "../../scripts/kms.ts";
import { recordThroughBridge } from "../bridge/helpers/recording-media.ts";

let kms: KmsHandle;

beforeAll(async () => {
  kms = await startKms({ loopbackOnly: true });
});

afterAll(async () => {
  await kms?.stop();
});

describe("recording a published stream on KMS 7.2 through the bridge (KMS only)", () => {
  it("stopRecording: the uploaded file is a VP8 WebM whose duration is within 10 % of the wall-clock time", async () => {
    const run = await recordThroughBridge(kms.url, { seconds: 5, end: "stopRecording" });
    console.log(
      `KMS: wall ${run.wallMs} ms, file ${run.probe.durationSeconds} s (${run.file.data.length} bytes), ` +
        `reported ${run.file.body.durationMs} ms from ${run.file.body.startOffsetMs} ms, ${run.plis} keyframe requests`,
    );
    expect(run.probe.formatName).toContain("webm");
    expect(run.probe).toMatchObject({ codec: "vp8", width: 320, height: 240 });
    expect(Math.abs(run.probe.durationSeconds * 1000 - run.wallMs)).toBeLessThan(run.wallMs * 0.1);
    // What the bridge reports matches the file.
    expect(Math.abs(run.file.body.durationMs - run.probe.durationSeconds * 1000)).toBeLessThan(run.wallMs * 0.1);
    expect(run.file.body.bytes).toBe(run.file.data.length);
    expect(run.file.body.startOffsetMs).toBeLessThan(2000);
    expect(run.events.filter((event) => event.event === "mediaError" || event.event === "mediaLost")).toEqual([]);
  });

  it("the bridge and KMS crash mid-recording: the next bridge finds the journal and delivers the cut file, which still decodes", async () => {
    const run = await recordThroughBridge(kms.url, {
      seconds: 4,
      end: "crash",
      crash: async () => {
        kms.signal("SIGKILL");
        await kms.exited;
      },
    });
    console.log(
      `KMS, crashed: wall ${run.wallMs} ms, ${run.probe.frames} frames, reported ${run.file.body.durationMs} ms`,
    );
    kms = await startKms({ loopbackOnly: true });
    expect(run.probe).toMatchObject({ codec: "vp8", width: 320, height: 240 });
    expect(run.probe.formatName).toContain("webm");
    // Most of the 15 frames a second up to the crash (KMS writes a cluster at a time, so the last ones are lost),
    // and the reported length, up to the file's last write, is what the file holds.
    expect(run.probe.frames).toBeGreaterThan((run.wallMs / 1000) * 15 * 0.6);
    const heldMs = (run.probe.frames / 15) * 1000;
    expect(Math.abs(run.file.body.durationMs - heldMs)).toBeLessThan(heldMs * 0.15);
  });

  it("the stream ends (unpublish) while recording: the file is still a complete VP8 WebM", async () => {
    const run = await recordThroughBridge(kms.url, { seconds: 5, end: "unpublish" });
    console.log(
      `KMS, unpublished: wall ${run.wallMs} ms, file ${run.probe.durationSeconds} s, reported ${run.file.body.durationMs} ms`,
    );
    expect(run.probe).toMatchObject({ codec: "vp8", width: 320, height: 240 });
    expect(Math.abs(run.probe.durationSeconds * 1000 - run.wallMs)).toBeLessThan(run.wallMs * 0.1);
  });
});
