/**
 * Recording, in real Chromium against the whole system (worker with its R2
 * bucket as wrangler dev simulates it, bridge, media server): two people
 * publish, the administrator starts and stops a recording through the REST
 * API, every page shows the badge meanwhile, and each stream's file comes
 * back through the worker as a WebM that ffprobe and ffmpeg accept. A
 * publisher who leaves mid-recording still yields a valid file. With
 * ALLOW_RECORDING_FROM_CLIENTS, the demo's Record button does the same.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { type Recording, recording as recordingSchema } from "../../protocol/recordings.ts";
import { mediaBackendFromEnv } from "../../scripts/system.ts";
import { decodeErrors, probeMedia, videoFrameCount } from "../helpers/media-probe.ts";
import { joinRoom, screenshot, waitForRemoteVideo, waitUntil } from "./helpers/demo.ts";
import { demoSuite } from "./helpers/suite.ts";

const ADMIN = "e2e-recording-admin";
const KMS = mediaBackendFromEnv() === "kms";
const suite = demoSuite({ ADMIN_TOKEN: ADMIN, ALLOW_RECORDING_FROM_CLIENTS: "true" });
/** Bound of the wait for files to reach the bucket after a stop: only a guard against a hang. */
const READY_WAIT_MS = 120_000;
/** How long the test lets the recording run: what the files' durations are compared with. */
const RECORD_MS = 6_000;

async function api(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${suite.stack.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json", ...init.headers },
  });
}

async function recordingOf(id: string): Promise<Recording> {
  const response = await api(`/api/recordings/${id}`);
  expect(response.status).toBe(200);
  return recordingSchema.parse(await response.json());
}

/** Polls until the recording leaves `stopping` (bounded), and returns it. */
async function settled(id: string): Promise<Recording> {
  const deadline = Date.now() + READY_WAIT_MS;
  for (;;) {
    const current = await recordingOf(id);
    if (current.status === "ready" || current.status === "failed") return current;
    if (Date.now() > deadline) throw new Error(`recording ${id} still ${current.status} after ${READY_WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Downloads every file of a ready recording through the worker and checks it with ffprobe and ffmpeg. */
async function checkFiles(ready: Recording): Promise<Map<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), "e2e-recording-"));
  const durations = new Map<string, number>();
  for (const file of ready.files) {
    const response = await api(`/api/recordings/${ready.id}/files/${file.name}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("video/webm");
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes.length).toBe(file.bytes);
    const path = join(dir, file.name);
    writeFileSync(path, bytes);
    const probe = await probeMedia(path);
    expect(probe.format).toContain("webm");
    expect(probe.codecs).toEqual(["opus", "vp8"]);
    // KMS's files may repeat a timestamp (the null muxer says so; every frame decodes): not ours to fix.
    expect(await decodeErrors(path, { allowRepeatedTimestamps: KMS })).toBe("");
    // The video track holds pictures, not just a header: at least 5 a second from a 15 fps camera.
    expect(await videoFrameCount(path)).toBeGreaterThan(probe.durationSec * 5);
    durations.set(file.user, probe.durationSec);
  }
  return durations;
}

async function badgeShown(page: Page): Promise<boolean> {
  return page.isVisible("#recordingBadge");
}

describe("recording in the demo", () => {
  it("the administrator records two publishers; both pages show the badge; both files come back valid through the worker", async () => {
    const room = suite.room("recorded");
    const ana = await suite.page();
    await joinRoom(ana, "ana", room);
    const ben = await suite.page();
    await joinRoom(ben, "ben", room);
    await waitForRemoteVideo(ana, ["ben_webcam"]);
    await waitForRemoteVideo(ben, ["ana_webcam"]);

    const started = await api("/api/recordings", { method: "POST", body: JSON.stringify({ room, name: "standup" }) });
    expect(started.status).toBe(201);
    const { id } = recordingSchema.pick({ id: true }).parse(await started.json());
    for (const page of [ana, ben]) await waitUntil(page, "the recording badge", () => badgeShown(page));
    await screenshot(ana, "ui-recording-badge");
    const second = await api("/api/recordings", { method: "POST", body: JSON.stringify({ room }) });
    expect(second.status).toBe(409);

    await new Promise((resolve) => setTimeout(resolve, RECORD_MS));
    const stopped = await api(`/api/recordings/${id}/stop`, { method: "POST" });
    expect(stopped.status).toBe(200);
    for (const page of [ana, ben]) await waitUntil(page, "the badge gone", async () => !(await badgeShown(page)));

    const ready = await settled(id);
    expect(ready.status, ready.reason).toBe("ready");
    expect(ready.files.map((f) => f.user).sort()).toEqual(["ana", "ben"]);
    const durations = await checkFiles(ready);
    for (const seconds of durations.values()) expect(seconds).toBeGreaterThan((RECORD_MS / 1000) * 0.6);

    const manifest = await api(`/api/recordings/${id}/files/manifest.json`);
    expect(manifest.status).toBe(200);
    const listed = (await manifest.json()) as { files: Array<{ name: string }> };
    expect(listed.files.map((f) => f.name).sort()).toEqual(ready.files.map((f) => f.name).sort());
  });

  it("a publisher who leaves mid-recording still yields a valid file; the demo's Record button starts and stops", async () => {
    const room = suite.room("leaver");
    const cy = await suite.page();
    await joinRoom(cy, "cy", room);
    const dee = await suite.page();
    await joinRoom(dee, "dee", room);
    await waitForRemoteVideo(cy, ["dee_webcam"]);

    await cy.waitForSelector("#buttonRecord:not([hidden])", { timeout: 30_000 });
    await cy.click("#buttonRecord");
    for (const page of [cy, dee]) await waitUntil(page, "the recording badge", () => badgeShown(page));
    const id = await cy.evaluate(
      () =>
        (window as unknown as { kurentoDemo: { room: { recording: string | null } | null } }).kurentoDemo.room
          ?.recording,
    );
    expect(id).toMatch(/^rec_/);

    await new Promise((resolve) => setTimeout(resolve, RECORD_MS / 2));
    await dee.click("#buttonLeaveRoom");
    await new Promise((resolve) => setTimeout(resolve, RECORD_MS / 2));
    await cy.click("#buttonRecord");
    await waitUntil(cy, "the badge gone", async () => !(await badgeShown(cy)));

    const ready = await settled(String(id));
    expect(ready.status, ready.reason).toBe("ready");
    expect(ready.files.map((f) => f.user).sort()).toEqual(["cy", "dee"]);
    const durations = await checkFiles(ready);
    // dee's file ended when dee left, about half way.
    expect(durations.get("dee")).toBeLessThan(durations.get("cy") ?? 0);
  });
});
