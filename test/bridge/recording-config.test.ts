/**
 * The recording settings of the bridge's environment (docs/bridge.md):
 * RECORDINGS_DIR, MEDIA_RECORDINGS_DIR, RECORDINGS_KEEP_LOCAL, and the
 * recorder URI the media server gets from them.
 */
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../bridge/config.ts";
import { RecordingPaths } from "../../bridge/recordings/journal.ts";

const BASE = { BRIDGE_SECRET: "0123456789abcdef-test-secret" };

function problems(env: Record<string, string>): readonly string[] {
  try {
    loadConfig({ ...BASE, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  return [];
}

describe("recording configuration", () => {
  it("defaults to <tmpdir>/edge-room-recordings, seen the same way by the media server, files deleted after delivery", () => {
    expect(loadConfig(BASE).recordings).toEqual({
      dir: join(tmpdir(), "edge-room-recordings"),
      mediaDir: join(tmpdir(), "edge-room-recordings"),
      keepLocal: false,
    });
  });

  it("takes RECORDINGS_DIR (made absolute), MEDIA_RECORDINGS_DIR for a media server in a container, and RECORDINGS_KEEP_LOCAL", () => {
    expect(
      loadConfig({
        ...BASE,
        RECORDINGS_DIR: "var/recordings",
        MEDIA_RECORDINGS_DIR: "/recordings/",
        RECORDINGS_KEEP_LOCAL: "TRUE",
      }).recordings,
    ).toEqual({ dir: resolve("var/recordings"), mediaDir: "/recordings", keepLocal: true });
    expect(loadConfig({ ...BASE, RECORDINGS_DIR: "/data/rec" }).recordings.mediaDir).toBe("/data/rec");
    expect(loadConfig({ ...BASE, RECORDINGS_KEEP_LOCAL: "0" }).recordings.keepLocal).toBe(false);
    expect(loadConfig({ ...BASE, RECORDINGS_KEEP_LOCAL: "" }).recordings.keepLocal).toBe(false);
  });

  it("names each bad value", () => {
    expect(problems({ MEDIA_RECORDINGS_DIR: "recordings", RECORDINGS_KEEP_LOCAL: "sometimes" })).toEqual([
      "MEDIA_RECORDINGS_DIR: must be an absolute path (as the media server sees it), e.g. /recordings (got 'recordings')",
      "RECORDINGS_KEEP_LOCAL: must be true or false (got 'sometimes')",
    ]);
  });

  it("gives the recorder a file:// URI of the media server's path, each segment percent-encoded", () => {
    const paths = new RecordingPaths("/var/lib/bridge/rec", "/srv/kms recordings");
    expect(paths.mediaUri("rec_abcdefgh", "001-alice-webcam.webm")).toBe(
      "file:///srv/kms%20recordings/rec_abcdefgh/001-alice-webcam.webm",
    );
    expect(paths.file("rec_abcdefgh", "001-alice-webcam.webm")).toBe(
      "/var/lib/bridge/rec/rec_abcdefgh/001-alice-webcam.webm",
    );
    expect(paths.journal("rec_abcdefgh", "001-alice-webcam.webm")).toBe(
      "/var/lib/bridge/rec/rec_abcdefgh/001-alice-webcam.webm.upload.json",
    );
  });
});
