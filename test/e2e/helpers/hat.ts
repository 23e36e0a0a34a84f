/**
 * What the two hat tests share (e2e/hat.test.ts on the embedded media server,
 * e2e/hat.kms.test.ts on a real KMS): the stack with one Chromium whose fake
 * camera shows a real face and one plain, and the pixel measurements of the
 * hat's colour above and on the face in the frame the viewer decodes.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll } from "vitest";
import { closeChromium, launchChromium, mediaContext } from "../../helpers/chromium.ts";
import { buildWeb } from "./build.ts";
import { FACE, faceClip } from "./face-clip.ts";
import { type Stack, startStack } from "./stack.ts";

export const WAIT_MS = 30_000;
/** The face detector and the hat download take a moment on a busy machine: a bound, not a timing. */
export const HAT_WAIT_MS = 60_000;

export interface HatSuite {
  readonly stack: Stack;
  readonly faceBrowser: Browser;
  readonly plainBrowser: Browser;
  /** A demo page in `browser`, closed after the test. */
  open(browser: Browser): Promise<Page>;
}

/** Starts the stack and the two browsers for the file, closes pages after each test and everything at the end. */
export function hatSuite(): HatSuite {
  let stack: Stack | undefined;
  let faceBrowser: Browser | undefined;
  let plainBrowser: Browser | undefined;
  const pages: Page[] = [];
  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not started (used outside a test?)`);
    return value;
  };

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

  return {
    get stack() {
      return need(stack, "the stack");
    },
    get faceBrowser() {
      return need(faceBrowser, "Chromium (face)");
    },
    get plainBrowser() {
      return need(plainBrowser, "Chromium");
    },
    async open(browser) {
      const context = await mediaContext(browser);
      const page = await context.newPage();
      pages.push(page);
      page.on("pageerror", (error) => console.error(`[page error] ${error.message}`));
      await page.goto(need(stack, "the stack").url);
      await page.waitForFunction(() => "kurentoDemo" in window, undefined, { timeout: WAIT_MS });
      return page;
    },
  };
}

export type Rgb = readonly [number, number, number];

/**
 * The hat image's own colour: the most common strongly saturated colour of
 * its opaque pixels (the Mario cap's red), decoded by the page from the very
 * file the bridge gives KMS.
 */
export async function hatColour(page: Page): Promise<Rgb> {
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

export interface HatStats {
  /** Share of the pixels in the band above the face that have the hat's colour. */
  readonly above: number;
  /** The same share over the face itself. */
  readonly face: number;
  readonly width: number;
  readonly height: number;
}

/** Reads back the frame Bob's <video> of `stream` shows now and measures the hat's colour above and on the face. */
export async function measure(page: Page, stream: string, colour: Rgb): Promise<HatStats> {
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
export async function mostSeen(page: Page, stream: string, colour: Rgb, samples: number): Promise<HatStats> {
  let most: HatStats | null = null;
  for (let i = 0; i < samples; i++) {
    const stats = await measure(page, stream, colour);
    if (!most || stats.above > most.above) most = stats;
    await page.waitForTimeout(200);
  }
  if (!most) throw new Error("no samples");
  return most;
}

export async function saveFrame(page: Page, stream: string, name: string): Promise<void> {
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
export const HAT_SHARE = 0.01;
