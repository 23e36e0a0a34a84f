/**
 * Screen sharing and the active speaker in the demo, in real Chromium
 * against the whole stack: a user shares a screen (Chromium's fake capture),
 * another sees it as the main video with the webcams as thumbnails; the
 * browser's "Stop sharing" ends it and the webcam remains. The speaking
 * highlight follows the microphone: Chromium plays a WAV file as the fake
 * microphone (a tone, then silence, looped), so speech and silence come at
 * known times.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { closeChromium, launchChromium } from "../helpers/chromium.ts";
import { buildWeb } from "./helpers/build.ts";
import { joinRoom, openDemo, screenshot, waitForRemoteVideo, waitUntil } from "./helpers/demo.ts";
import { startStack, type Stack } from "./helpers/stack.ts";

const SAMPLE_RATE = 48_000;
/** The fake microphone: this long a tone, then as long silence, looped by Chromium. */
const TONE_SECONDS = 2;

/** A 16-bit mono WAV: a 440 Hz tone at a speaking level, then silence. */
function toneThenSilence(seconds: number): Buffer {
  const samples = SAMPLE_RATE * seconds * 2;
  const data = Buffer.alloc(samples * 2);
  for (let i = 0; i < SAMPLE_RATE * seconds; i++) {
    data.writeInt16LE(Math.round(Math.sin((2 * Math.PI * 440 * i) / SAMPLE_RATE) * 0.3 * 32767), i * 2);
  }
  const header = Buffer.alloc(44);
  header.write("RIFF", 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write("WAVE", 8);
  header.write("fmt ", 12);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(SAMPLE_RATE, 24);
  header.writeUInt32LE(SAMPLE_RATE * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write("data", 36);
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

let stack: Stack | undefined;
let browser: Browser | undefined;
let dir = "";
const pages: Page[] = [];
let roomCounter = 0;

beforeAll(async () => {
  buildWeb();
  dir = mkdtempSync(join(tmpdir(), "screen-share-"));
  const wav = join(dir, "tone.wav");
  writeFileSync(wav, toneThenSilence(TONE_SECONDS));
  stack = await startStack({ vars: {} });
  browser = await launchChromium({
    extraArgs: [
      `--use-file-for-fake-audio-capture=${wav}`,
      // The AudioContext that measures levels starts after the join click's activation has passed.
      "--autoplay-policy=no-user-gesture-required",
    ],
  });
});

afterEach(async () => {
  for (const page of pages.splice(0)) {
    await page
      .evaluate(() =>
        (window as unknown as { kurentoDemo: { room: { leave(): Promise<void> } | null } }).kurentoDemo.room?.leave(),
      )
      .catch(() => undefined);
    await page.context().close();
  }
});

afterAll(async () => {
  if (browser) await closeChromium(browser);
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function page(): Promise<Page> {
  if (!browser || !stack) throw new Error("the stack and Chromium are not started");
  const opened = await openDemo(browser, stack.url);
  pages.push(opened);
  return opened;
}

function room(prefix: string): string {
  roomCounter += 1;
  return `${prefix}-${process.pid}-${roomCounter}`;
}

function hasClass(p: Page, selector: string, name: string): Promise<boolean> {
  return p.$eval(selector, (el, cls) => el.classList.contains(cls), name).catch(() => false);
}

describe("screen sharing in the demo", () => {
  it("a shared screen is the others' main video; the browser's Stop sharing ends it and the webcam remains", async () => {
    const name = room("screen");
    const alice = await page();
    await joinRoom(alice, "alice", name);
    const bob = await page();
    await joinRoom(bob, "bob", name);
    await waitForRemoteVideo(bob, ["alice_webcam"], 90_000);
    // Bob pins nothing: the automatic choice decides his main video.
    expect(await alice.isVisible("#buttonShareScreen")).toBe(true);
    expect(await alice.textContent("#buttonShareScreen")).toBe("Share screen");

    await alice.click("#buttonShareScreen");
    await waitUntil(alice, "alice's button to offer Stop sharing", async () => {
      return (await alice.textContent("#buttonShareScreen")) === "Stop sharing";
    });
    await alice.waitForSelector('[id="thumb-alice_screen"]', { timeout: 60_000 });
    expect(await alice.getAttribute("#buttonShareScreen", "aria-pressed")).toBe("true");

    const frames = await waitForRemoteVideo(bob, ["alice_screen", "alice_webcam"], 90_000);
    expect(frames.every((f) => f.framesDecoded > 0)).toBe(true);
    await waitUntil(bob, "alice's screen as bob's main video", async () => {
      return (await bob.textContent("#mainName")) === "alice (screen)";
    });
    await waitUntil(bob, "the screen's pixels in bob's main video", () =>
      bob.$eval("#main-video-element", (v) => (v as HTMLVideoElement).videoWidth > 0),
    );
    expect(await hasClass(bob, "#main-video", "main-screen")).toBe(true);
    // The webcams stay thumbnails.
    expect(await bob.isVisible('[id="thumb-alice_webcam"]')).toBe(true);
    expect(await bob.isVisible('[id="thumb-bob_webcam"]')).toBe(true);
    expect(await bob.getAttribute('[id="thumb-alice_screen"]', "class")).toContain("active-video");
    await screenshot(bob, "screen-share-main");

    // The browser's own "Stop sharing" ends the capture track: it stops and says "ended".
    await alice.evaluate(() => {
      type App = { room: { getScreenShare(): { getWrStream(): MediaStream | null } | null } | null };
      const share = (window as unknown as { kurentoDemo: App }).kurentoDemo.room?.getScreenShare();
      for (const track of share?.getWrStream()?.getVideoTracks() ?? []) {
        track.stop();
        track.dispatchEvent(new Event("ended"));
      }
    });
    await waitUntil(alice, "alice's button to offer Share screen again", async () => {
      return (await alice.textContent("#buttonShareScreen")) === "Share screen";
    });
    expect(await alice.$('[id="thumb-alice_screen"]')).toBeNull();
    await waitUntil(bob, "alice's screen to leave bob's page", async () => {
      return (await bob.$('[id="thumb-alice_screen"]')) === null;
    });
    expect(await bob.textContent("#mainName")).not.toContain("screen");
    expect(await hasClass(bob, "#main-video", "main-screen")).toBe(false);
    // Only the screen went: alice's webcam is still received and decoding.
    const before = (await waitForRemoteVideo(bob, ["alice_webcam"], 30_000))[0]?.framesDecoded ?? 0;
    await waitUntil(bob, "alice's webcam to keep decoding", async () => {
      const [webcam] = await waitForRemoteVideo(bob, ["alice_webcam"], 10_000);
      return (webcam?.framesDecoded ?? 0) > before;
    });
    expect(await bob.isVisible('[id="thumb-alice_webcam"]')).toBe(true);

    // Sharing again works (the server released the first share).
    await alice.click("#buttonShareScreen");
    await waitForRemoteVideo(bob, ["alice_screen", "alice_webcam"], 90_000);
    await alice.click("#buttonShareScreen");
    await waitUntil(bob, "the second share to end", async () => (await bob.$('[id="thumb-alice_screen"]')) === null);
  });
});

describe("the active speaker in the demo", () => {
  it("alice's tile is highlighted while her microphone plays the tone, not during the silence; pinning holds the main video", async () => {
    const name = room("speaker");
    const alice = await page();
    await joinRoom(alice, "alice", name);
    const bob = await page();
    await joinRoom(bob, "bob", name);
    // Bob's microphone plays the same file: muted, so alice is the only one speaking.
    await bob.click("#buttonVolume");
    await waitForRemoteVideo(bob, ["alice_webcam"], 90_000);
    const tile = '[id="thumb-alice_webcam"]';

    // The tone and the silence alternate every 2 s: the highlight follows, both ways, twice.
    for (let round = 0; round < 2; round++) {
      await waitUntil(bob, "alice's tile to show her speaking", () => hasClass(bob, tile, "speaking"), 20_000);
      await waitUntil(
        bob,
        "alice's tile to show her silent",
        async () => !(await hasClass(bob, tile, "speaking")),
        20_000,
      );
    }
    // Her own page measures her microphone too.
    await waitUntil(alice, "alice's own tile speaking", () => hasClass(alice, tile, "speaking"), 20_000);
    // Bob muted: his tile never speaks on alice's page.
    expect(await hasClass(alice, '[id="thumb-bob_webcam"]', "speaking")).toBe(false);
    // The main video follows the active speaker: alice.
    await waitUntil(bob, "alice as bob's main video", async () => (await bob.textContent("#mainName")) === "alice");
    await screenshot(bob, "active-speaker");

    // Pinning bob's own tile holds the main video while alice speaks; clicking it again lets it follow her.
    await bob.click('[id="thumb-bob_webcam"]');
    expect(await bob.textContent("#mainName")).toBe("bob (you)");
    expect(await hasClass(bob, '[id="thumb-bob_webcam"]', "pinned")).toBe(true);
    await waitUntil(bob, "alice speaking again", () => hasClass(bob, tile, "speaking"), 20_000);
    await bob.waitForTimeout(1000);
    expect(await bob.textContent("#mainName")).toBe("bob (you)");
    await bob.click('[id="thumb-bob_webcam"]');
    expect(await hasClass(bob, '[id="thumb-bob_webcam"]', "pinned")).toBe(false);
    await waitUntil(
      bob,
      "the main video back on alice",
      async () => (await bob.textContent("#mainName")) === "alice",
      20_000,
    );
  });
});
