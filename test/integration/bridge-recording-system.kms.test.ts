/**
 * Recording through the whole system on KMS 7.2 (KMS only; the embedded
 * media server's run is bridge-recording-system.test.ts): the REST API
 * starts and stops a room's recording, the bridge records the publisher's
 * real VP8 with KMS's RecorderEndpoint and uploads the file, and the worker
 * serves back a VP8 WebM as long as the recording lasted.
 */
import { describe, expect, it } from "vitest";
import { recordThroughSystem } from "../bridge/helpers/recording-system.ts";

describe("a recording through worker, bridge and KMS 7.2 (KMS only)", () => {
  it("starts and stops over REST; the file the worker serves is a VP8 WebM within 10 % of the wall-clock time", async () => {
    const run = await recordThroughSystem("kms", 5);
    const [file] = run.recording.files;
    console.log(
      `KMS, whole system: wall ${run.wallMs} ms, file ${run.probe.durationSeconds} s, reported ${file?.durationMs} ms`,
    );
    expect(run.recording.files).toHaveLength(1);
    expect(file).toMatchObject({ user: "alice", stream: "webcam", status: "ready", bytes: run.bytes });
    expect(run.probe).toMatchObject({ codec: "vp8", width: 320, height: 240 });
    expect(run.probe.formatName).toContain("webm");
    expect(Math.abs(run.probe.durationSeconds * 1000 - run.wallMs)).toBeLessThan(run.wallMs * 0.1);
    expect(Math.abs((file?.durationMs ?? 0) - run.wallMs)).toBeLessThan(run.wallMs * 0.1);
  });
});
