/**
 * Driving the demo app in real Chromium: open it, log in, read what the page
 * shows, read WebRTC stats of every stream through `window.kurentoDemo`, and
 * save screenshots into test-artifacts/.
 */
import { mkdirSync } from "node:fs";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { CHROMIUM_ARGS, CHROMIUM_PATH, launchChromium, mediaContext } from "../../helpers/chromium.ts";
import type { DemoApp } from "../../../web/src/demo/app.ts";

export const ARTIFACTS = "test-artifacts";

type DemoWindow = Window & { kurentoDemo: DemoApp };

export interface Pages {
  readonly browser: Browser;
  readonly contexts: BrowserContext[];
}

/** Chromium with the fake camera and microphone (no permission prompt). */
export function launch(): Promise<Browser> {
  return launchChromium();
}

/**
 * Chromium without `--use-fake-ui-for-media-stream`: the permission prompt
 * cannot be answered headless, so getUserMedia is refused (NotAllowedError),
 * as when a user clicks "Block".
 */
export function launchDenyingCamera(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS.filter((arg) => arg !== "--use-fake-ui-for-media-stream"),
    timeout: 30_000,
  });
}

/** A fresh profile with camera and microphone allowed, on the demo page. */
export async function openDemo(browser: Browser, url: string, viewport = { width: 1280, height: 800 }): Promise<Page> {
  const context = await mediaContext(browser);
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  page.on("pageerror", (error) => console.error(`[page error] ${error.message}`));
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as Partial<DemoWindow>).kurentoDemo !== undefined, undefined, {
    timeout: 30_000,
  });
  return page;
}

export async function fillLogin(page: Page, user: string, room: string): Promise<void> {
  await page.fill("#name", user);
  await page.fill("#roomName", room);
}

/** Logs in and waits for the room view. */
export async function joinRoom(page: Page, user: string, room: string): Promise<void> {
  await fillLogin(page, user, room);
  await page.click("#joinBtn");
  await page.waitForSelector("#room:not([hidden])", { timeout: 45_000 });
}

/** The login form's error text, once it shows. */
export async function loginError(page: Page): Promise<string> {
  await page.waitForSelector("#loginError:not([hidden])", { timeout: 30_000 });
  return (await page.textContent("#loginErrorText")) ?? "";
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}/${name}.png` });
}

/** Chat lines as "user: text" (system lines as "* text"), in order. */
export async function chatLines(page: Page): Promise<string[]> {
  return page.$$eval("#messages li", (items) =>
    items.map((li) => {
      if (li.classList.contains("system")) return `* ${li.textContent ?? ""}`;
      const who = li.querySelector("strong")?.textContent ?? "";
      const text = li.querySelector("span")?.textContent ?? "";
      return `${who}: ${text}`;
    }),
  );
}

export async function sendChat(page: Page, text: string): Promise<void> {
  await page.fill("#chatInput", text);
  await page.click("#chatSend");
}

/** The demo's view of the roster: participant names (local first) and the room state. */
export async function roster(page: Page): Promise<{ state: string | null; participants: string[] }> {
  return page.evaluate(() => {
    const app = (window as unknown as DemoWindow).kurentoDemo;
    return {
      state: app.room?.state ?? null,
      participants: app.room?.getParticipants().map((p) => p.getID()) ?? [],
    };
  });
}

export interface StreamFrames {
  readonly id: string;
  readonly status: string;
  readonly framesDecoded: number;
  readonly audioPackets: number;
  /** For failure messages: video packets received, keyframe requests sent, the codec in use. */
  readonly videoPackets: number;
  readonly plisSent: number;
  readonly codec: string;
}

/** For every remote stream the page has: its status and what its peer connection decoded so far. */
export async function remoteFrames(page: Page): Promise<StreamFrames[]> {
  return page.evaluate(async () => {
    const app = (window as unknown as DemoWindow).kurentoDemo;
    const streams = app.room?.getStreams().filter((s) => !s.isLocal()) ?? [];
    const out: StreamFrames[] = [];
    for (const stream of streams) {
      let framesDecoded = 0;
      let audioPackets = 0;
      let videoPackets = 0;
      let plisSent = 0;
      let codec = "";
      const codecs = new Map<string, string>();
      const pc = stream.getWebRtcPeer();
      if (pc) {
        const stats = await pc.getStats();
        type Report = {
          id?: string;
          type?: string;
          kind?: string;
          framesDecoded?: number;
          packetsReceived?: number;
          pliCount?: number;
          codecId?: string;
          mimeType?: string;
        };
        stats.forEach((report: Report) => {
          if (report.type === "codec" && report.id && report.mimeType) codecs.set(report.id, report.mimeType);
        });
        stats.forEach((report: Report) => {
          if (report.type !== "inbound-rtp") return;
          if (report.kind === "video") {
            framesDecoded += report.framesDecoded ?? 0;
            videoPackets += report.packetsReceived ?? 0;
            plisSent += report.pliCount ?? 0;
            codec = (report.codecId && codecs.get(report.codecId)) || codec;
          }
          if (report.kind === "audio") audioPackets += report.packetsReceived ?? 0;
        });
      }
      out.push({
        id: stream.getGlobalID(),
        status: stream.status,
        framesDecoded,
        audioPackets,
        videoPackets,
        plisSent,
        codec,
      });
    }
    return out;
  });
}

/** Waits until the page decodes video from exactly `expected` remote streams (bounded). */
export async function waitForRemoteVideo(
  page: Page,
  expected: readonly string[],
  timeoutMs = 60_000,
): Promise<StreamFrames[]> {
  const want = [...expected].sort();
  const deadline = Date.now() + timeoutMs;
  let last: StreamFrames[] = [];
  while (Date.now() < deadline) {
    last = await remoteFrames(page);
    const ids = last.map((s) => s.id).sort();
    if (JSON.stringify(ids) === JSON.stringify(want) && last.every((s) => s.framesDecoded > 0)) return last;
    await page.waitForTimeout(250);
  }
  // What the page told its user (a media error, the chat's system lines) and the room's state: why, for the report.
  const told = await page
    .evaluate(() => ({
      room: (window as unknown as DemoWindow).kurentoDemo.room?.state ?? null,
      mediaError: document.getElementById("mediaErrorText")?.textContent ?? "",
      system: Array.from(document.querySelectorAll("#messages li.system"), (li) => li.textContent ?? "").slice(-10),
    }))
    .catch((error: unknown) => String(error));
  throw new Error(
    `remote video never decoded for ${JSON.stringify(want)} within ${timeoutMs} ms; last: ${JSON.stringify(last)}; page: ${JSON.stringify(told)}`,
  );
}

/** Polls a page-side condition (bounded), with a description for the failure. */
export async function waitUntil(
  page: Page,
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await page.waitForTimeout(100);
  }
}
