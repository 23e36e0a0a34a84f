/**
 * Recording a published stream through the bridge's room media, on the back
 * end MEDIA_BACKEND names (the embedded server's RecorderEndpoint in
 * `integration`, KMS 7.2's in `integration-kms`, through the real
 * kurento-client): a werift publisher sends real VP8, the file ends, and the
 * bridge uploads it to a local stand-in of the worker's upload API; ffprobe
 * reads a VP8 WebM as long as the recording lasted.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mediaBackendFromEnv } from "../../scripts/system.ts";
import { lengthSlackMs, recordThroughBridge } from "../bridge/helpers/recording-media.ts";
import { type MediaBackendHandle, startMediaBackend } from "../helpers/media-backend.ts";

const BACKEND = mediaBackendFromEnv();
let server: MediaBackendHandle | undefined;
let url: string;

beforeAll(async () => {
  server = await startMediaBackend(BACKEND);
  url = server.url;
});

afterAll(async () => {
  await server?.stop();
});

describe(`recording a published stream through the bridge (${BACKEND})`, () => {
  it("stopRecording: the uploaded file is a VP8 WebM whose duration is as long as the recording (within 10 %, at least 1 s)", async () => {
    const run = await recordThroughBridge(url, { seconds: 5, end: "stopRecording" });
    console.log(
      `${BACKEND}: wall ${run.wallMs} ms, file ${run.probe.durationSeconds} s (${run.file.data.length} bytes), ` +
        `reported ${run.file.body.durationMs} ms from ${run.file.body.startOffsetMs} ms, ${run.plis} keyframe requests`,
    );
    expect(run.probe.formatName).toContain("webm");
    expect(run.probe).toMatchObject({ codec: "vp8", width: 320, height: 240 });
    expect(Math.abs(run.probe.durationSeconds * 1000 - run.wallMs)).toBeLessThan(lengthSlackMs(run.wallMs));
    expect(Math.abs(run.file.body.durationMs - run.probe.durationSeconds * 1000)).toBeLessThan(
      lengthSlackMs(run.wallMs),
    );
    expect(run.file.body.bytes).toBe(run.file.data.length);
    expect(run.file.body.startOffsetMs).toBeLessThan(2000);
    expect(run.events.filter((event) => event.event === "mediaError" || event.event === "mediaLost")).toEqual([]);
  });

  it("the stream ends (unpublish) while recording: the file is still a complete VP8 WebM", async () => {
    const run = await recordThroughBridge(url, { seconds: 5, end: "unpublish" });
    console.log(
      `${BACKEND}, unpublished: wall ${run.wallMs} ms, file ${run.probe.durationSeconds} s, reported ${run.file.body.durationMs} ms`,
    );
    expect(run.probe).toMatchObject({ codec: "vp8", width: 320, height: 240 });
    expect(Math.abs(run.probe.durationSeconds * 1000 - run.wallMs)).toBeLessThan(lengthSlackMs(run.wallMs));
  });
});
