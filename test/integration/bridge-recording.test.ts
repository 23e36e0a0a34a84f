/**
 * Recording on the embedded media server (its RecorderEndpoint): the same
 * run as bridge-recording.kms.test.ts on KMS 7.2 — the bridge's room media
 * records a werift publisher sending real VP8, ends the file, and uploads it
 * to a local stand-in of the worker's upload API; ffprobe reads a VP8 WebM
 * as long as the recording lasted.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MediaServerHandle, startMediaServer } from "../../media-server/index.ts";
import { recordThroughBridge } from "../bridge/helpers/recording-media.ts";

let server: MediaServerHandle;

beforeAll(async () => {
  server = await startMediaServer({ port: 0, webrtc: { loopbackOnly: true }, log: () => {} });
});

afterAll(async () => {
  await server?.close();
});

describe("recording a published stream on the embedded media server through the bridge", () => {
  it("stopRecording: the uploaded file is a VP8 WebM whose duration is within 10 % of the wall-clock time", async () => {
    const run = await recordThroughBridge(server.url, { seconds: 5, end: "stopRecording" });
    console.log(
      `embedded: wall ${run.wallMs} ms, file ${run.probe.durationSeconds} s (${run.file.data.length} bytes), ` +
        `reported ${run.file.body.durationMs} ms from ${run.file.body.startOffsetMs} ms, ${run.plis} keyframe requests`,
    );
    expect(run.probe.formatName).toContain("webm");
    expect(run.probe).toMatchObject({ codec: "vp8", width: 320, height: 240 });
    expect(Math.abs(run.probe.durationSeconds * 1000 - run.wallMs)).toBeLessThan(run.wallMs * 0.1);
    expect(Math.abs(run.file.body.durationMs - run.probe.durationSeconds * 1000)).toBeLessThan(run.wallMs * 0.1);
    expect(run.file.body.bytes).toBe(run.file.data.length);
    expect(run.file.body.startOffsetMs).toBeLessThan(2000);
    expect(run.events.filter((event) => event.event === "mediaError" || event.event === "mediaLost")).toEqual([]);
  });

  it("the stream ends (unpublish) while recording: the file is still a complete VP8 WebM", async () => {
    const run = await recordThroughBridge(server.url, { seconds: 5, end: "unpublish" });
    console.log(
      `embedded, unpublished: wall ${run.wallMs} ms, file ${run.probe.durationSeconds} s, reported ${run.file.body.durationMs} ms`,
    );
    expect(run.probe).toMatchObject({ codec: "vp8", width: 320, height: 240 });
    expect(Math.abs(run.probe.durationSeconds * 1000 - run.wallMs)).toBeLessThan(run.wallMs * 0.1);
  });
});
