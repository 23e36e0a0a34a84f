/**
 * What only a real KMS can show (KMS 7.2; the recording runs that both back
 * ends share are in bridge-recording.test.ts): the bridge and KMS are killed
 * mid-recording; the next bridge's upload queue finds the journal and
 * delivers the cut file, which still decodes.
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

describe("a recording cut by a crash of the bridge and KMS 7.2 (KMS only: the test kills the media server's process, and the embedded one runs inside this test process)", () => {
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
});
