/**
 * The demo's hat on the embedded media server, through the whole stack
 * (hat.kms.test.ts is the same on a real KMS): the embedded server runs
 * FaceOverlayFilter on GStreamer (a gst-launch-1.0 child per filter), so it
 * reports the filter, the worker lists "hat" and the button works. Alice's fake camera
 * shows a real face (a photograph, helpers/face-clip.ts); she presses the
 * demo's Hat button; the room asks the bridge, which puts a
 * FaceOverlayFilter between her WebRtcEndpoint and PassThrough; Bob's page
 * decodes her video, and the frame he sees is read back from his <video>.
 * Above her face it must show the hat's colours, which it did not before
 * the hat, and does not after it comes off.
 */
import { execFileSync } from "node:child_process";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { closeChromium, launchChromium, mediaContext } from "../helpers/chromium.ts";
import { buildWeb } from "./helpers/build.ts";
import { joinRoom, screenshot, waitForRemoteVideo, waitUntil } from "./helpers/demo.ts";
import { FACE, faceClip } from "./helpers/face-clip.ts";
import { type Stack, startStack } from "./helpers/stack.ts";

const WAIT_MS = 30_000;
/** The face detector and the hat download take a moment on a busy machine: a bound, not a timing. */
const HAT_WAIT_MS = 60_000;

let stack: Stack;
let faceBrowser: Browser;
let plainBrowser: Browser;
const pages: Page[] = [];

beforeAll(async () => {
  buildWeb();
  stack = await startStack();
  faceBrowser = await launchChromium({ extraArgs: [`--use-file-for-fake-video-capture=${faceClip()}`] });
  plainBrowser = await launchChromium();
});

afterEach(async () => {
  for (const opened of pages.splice(0)) await opened.context().close();
});

afterAll(async () => {
  if (faceBrowser) await closeChromium(faceBrowser);
  if (plainBrowser) await closeChromium(plainBrowser);
  await stack?.stop();
});

async function open(browser: Browser): Promise<Page> {
  const context = await mediaContext(browser);
  const page = await context.newPage();
  pages.push(page);
  page.on("pageerror", (error) => console.error(`[page error] ${error.message}`));
  await page.goto(stack.url);
  await page.waitForFunction(() => "kurentoDemo" in window, undefined, { timeout: WAIT_MS });
  return page;
}

type Rgb = readonly [number, number, number];

/**
 * The hat image's own colour: the most common strongly saturated colour of
 * its opaque pixels (the Mario cap's red), decoded by the page from the very
 * file the bridge gives KMS.
 */
async function hatColour(page: Page): Promise<Rgb> {
  return page.evaluate(async () => {
    const bitmap = await createImageBitmap(await (await fetch("/img/mario-wings.png")).blob());
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const context = canvas.getContext("2d");
    if (!context) throw new Error("no 2d context");
    context.drawImage(bitmap, 0, 0);
    const data = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
    const buckets = new Map<number, { n: number; r: number; g: number; b: number }>();
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = [data[i]!, data[i + 1]!, data[i + 2]!, data[i + 3]!];
      if (a < 200 || Math.max(r, g, b) - Math.min(r, g, b) < 100) continue;
      const key = ((r >> 5) << 6) | ((g >> 5) << 3) | (b >> 5);
      const bucket = buckets.get(key) ?? { n: 0, r: 0, g: 0, b: 0 };
      bucket.n += 1;
      bucket.r += r;
      bucket.g += g;
      bucket.b += b;
      buckets.set(key, bucket);
    }
    const top = [...buckets.values()].sort((x, y) => y.n - x.n)[0];
    if (!top) throw new Error("the hat image has no saturated colour");
    return [top.r / top.n, top.g / top.n, top.b / top.n] as const;
  });
}

interface HatStats {
  /** Share of the pixels in the band above the face that have the hat's colour. */
  readonly above: number;
  /** The same share over the face itself. */
  readonly face: number;
  readonly width: number;
  readonly height: number;
}

/** Reads back the frame Bob's <video> of `stream` shows now and measures the hat's colour above and on the face. */
async function measure(page: Page, stream: string, colour: Rgb): Promise<HatStats> {
  return page.evaluate(
    ({ id, colour: [red, green, blue], face }) => {
      const video = document.getElementById(`video-${id}`) as HTMLVideoElement | null;
      if (!video || video.videoWidth === 0) return { above: -1, face: -1, width: 0, height: 0 };
      const { videoWidth: width, videoHeight: height } = video;
      const canvas = document.createElement("canvas");
      canvas.width = width;
      canvas.height = height;
      const context = canvas.getContext("2d", { willReadFrequently: true });
      if (!context) throw new Error("no 2d context");
      context.drawImage(video, 0, 0, width, height);
      const data = context.getImageData(0, 0, width, height).data;
      const share = (x0: number, x1: number, y0: number, y1: number): number => {
        let hits = 0;
        let all = 0;
        for (let y = Math.floor(y0 * height); y < Math.floor(y1 * height); y++) {
          for (let x = Math.floor(x0 * width); x < Math.floor(x1 * width); x++) {
            const i = (y * width + x) * 4;
            const d = Math.hypot(data[i]! - red, data[i + 1]! - green, data[i + 2]! - blue);
            if (d < 70) hits += 1;
            all += 1;
          }
        }
        return all === 0 ? 0 : hits / all;
      };
      // The band above the face: from the top of the frame to the eyebrows, a face width either side.
      const faceWidth = face.right - face.left;
      const above = share(face.left - faceWidth / 2, face.right + faceWidth / 2, 0, face.top);
      return { above, face: share(face.left, face.right, face.top + 0.05, face.bottom), width, height };
    },
    { id: stream, colour, face: FACE },
  );
}

/** The largest share seen over `samples` frames, one every 200 ms (the hat must be absent from all of them). */
async function mostSeen(page: Page, stream: string, colour: Rgb, samples: number): Promise<HatStats> {
  let most: HatStats | null = null;
  for (let i = 0; i < samples; i++) {
    const stats = await measure(page, stream, colour);
    if (!most || stats.above > most.above) most = stats;
    await page.waitForTimeout(200);
  }
  if (!most) throw new Error("no samples");
  return most;
}

async function saveFrame(page: Page, stream: string, name: string): Promise<void> {
  const png = await page.evaluate((id) => {
    const video = document.getElementById(`video-${id}`) as HTMLVideoElement;
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d")?.drawImage(video, 0, 0);
    return canvas.toDataURL("image/png");
  }, stream);
  const { writeFileSync, mkdirSync } = await import("node:fs");
  mkdirSync("test-artifacts", { recursive: true });
  writeFileSync(`test-artifacts/${name}.png`, Buffer.from(png.split(",")[1] ?? "", "base64"));
}

/** A share of the band above the face the hat's colour must reach (the cap alone covers far more). */
const HAT_SHARE = 0.01;

/** gst-launch-1.0 children of this process (the stack's embedded media server runs in it). */
function gstChildren(): number {
  try {
    const out = execFileSync("ps", ["-o", "comm=", "--ppid", String(process.pid)], { encoding: "utf8" });
    return out.split("\n").filter((line) => line.trim() === "gst-launch-1.0").length;
  } catch {
    return 0; // ps exits 1 when there are no children at all
  }
}

describe("the hat on the embedded media server (FaceOverlayFilter on GStreamer)", () => {
  it("the wearer's Hat button puts the hat above her face in the video the viewer decodes, and takes it off", async () => {
    const config = (await (await fetch(`${stack.url}/getClientConfig`)).json()) as { filters: string[] };
    // The embedded server reports FaceOverlayFilter (GStreamer is installed by .ci/run), so the worker lists the hat.
    expect(config.filters).toEqual(["hat"]);
    expect(gstChildren()).toBe(0);

    const room = `hat-${process.pid}`;
    const alice = await open(faceBrowser);
    await joinRoom(alice, "alice", room);
    const bob = await open(plainBrowser);
    await joinRoom(bob, "bob", room);
    await waitForRemoteVideo(bob, ["alice_webcam"]);
    const colour = await hatColour(bob);
    // The cap is red: the colour measured is the image's, not a guess.
    expect(colour[0]).toBeGreaterThan(150);
    expect(colour[1]).toBeLessThan(120);

    // Before the hat: the band above her face has (almost) none of that colour.
    const before = await mostSeen(bob, "alice_webcam", colour, 10);
    expect(before.width).toBeGreaterThan(0);
    expect(before.above).toBeLessThan(HAT_SHARE / 4);
    await saveFrame(bob, "alice_webcam", "hat-embedded-before");

    // The demo's own button (enabled: the worker lists the filter, and she publishes).
    await alice.waitForSelector("#buttonHat:not([disabled])", { timeout: WAIT_MS });
    expect(await alice.isHidden("#hatReason")).toBe(true);
    await alice.click("#buttonHat");
    await waitUntil(
      alice,
      "the button to say 'Remove hat'",
      async () => (await alice.textContent("#buttonHat")) === "Remove hat",
    );

    let withHat = before;
    await waitUntil(
      bob,
      "the hat above alice's face in bob's video",
      async () => {
        withHat = await measure(bob, "alice_webcam", colour);
        return withHat.above > HAT_SHARE;
      },
      HAT_WAIT_MS,
    );
    await saveFrame(bob, "alice_webcam", "hat-embedded-on");
    expect(gstChildren()).toBe(1);
    await screenshot(bob, "hat-embedded-viewer");
    // Above the face, not over it: the face keeps its own colours.
    expect(withHat.face).toBeLessThan(withHat.above);
    console.log(
      `hat colour share above the face: before ${before.above.toFixed(4)}, with the hat ${withHat.above.toFixed(4)}`,
    );
    // Video still decodes through the filter.
    const frames = (await waitForRemoteVideo(bob, ["alice_webcam"]))[0]?.framesDecoded ?? 0;
    expect(frames).toBeGreaterThan(0);

    await alice.click("#buttonHat");
    await waitUntil(alice, "the button to say 'Hat'", async () => (await alice.textContent("#buttonHat")) === "Hat");
    await waitUntil(
      bob,
      "the hat to come off in bob's video",
      async () => (await mostSeen(bob, "alice_webcam", colour, 3)).above < HAT_SHARE / 4,
      HAT_WAIT_MS,
    );
    // The filter was released with the hat: its GStreamer process is gone.
    await waitUntil(bob, "the filter's GStreamer process to end", async () => gstChildren() === 0, HAT_WAIT_MS);
  });
});
