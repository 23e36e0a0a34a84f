/**
 * Recording through the whole system (worker under wrangler dev with its
 * simulated R2, bridge, media server; no browser), on the back end
 * MEDIA_BACKEND names (the embedded media server in `integration`, KMS 7.2 in
 * `integration-kms`): the REST API starts and stops a room's recording, the
 * bridge records the publisher's real VP8 and uploads the file, and the
 * worker serves back a VP8 WebM as long as the recording lasted.
 */
import { describe, expect, it } from "vitest";
import { mediaBackendFromEnv } from "../../scripts/system.ts";
import { lengthSlackMs } from "../bridge/helpers/recording-media.ts";
import { recordThroughSystem } from "../bridge/helpers/recording-system.ts";

const BACKEND = mediaBackendFromEnv();

describe(`a recording through worker, bridge and media server (${BACKEND})`, () => {
  it("starts and stops over REST; the file the worker serves is a VP8 WebM as long as the recording (within 10 %, at least 1 s)", async () => {
    const run = await recordThroughSystem(BACKEND, 5);
    const [file] = run.recording.files;
    console.log(
      `${BACKEND}, whole system: wall ${run.wallMs} ms, file ${run.probe.durationSeconds} s, reported ${file?.durationMs} ms`,
    );
    expect(run.recording.files).toHaveLength(1);
    expect(file).toMatchObject({ user: "alice", stream: "webcam", status: "ready", bytes: run.bytes });
    expect(run.probe).toMatchObject({ codec: "vp8", width: 320, height: 240 });
    expect(run.probe.formatName).toContain("webm");
    expect(Math.abs(run.probe.durationSeconds * 1000 - run.wallMs)).toBeLessThan(lengthSlackMs(run.wallMs));
    expect(Math.abs((file?.durationMs ?? 0) - run.wallMs)).toBeLessThan(lengthSlackMs(run.wallMs));
  });
});
