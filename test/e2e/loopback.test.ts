/**
 * The loopback options served by /getClientConfig (the original
 * demo.loopback.remote / andLocal): with LOOPBACK_REMOTE the page shows its
 * own video as it comes back from the media server; with LOOPBACK_AND_LOCAL
 * it also shows the untouched local camera beside it.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { closeChromium } from "../helpers/chromium.ts";
import { buildWeb } from "./helpers/build.ts";
import { joinRoom, launch, openDemo, screenshot, waitUntil } from "./helpers/demo.ts";
import { startStack, type Stack } from "./helpers/stack.ts";

let stack: Stack;
let browser: Browser;

beforeAll(async () => {
  buildWeb();
  stack = await startStack({ vars: { LOOPBACK_REMOTE: "true", LOOPBACK_AND_LOCAL: "true" } });
  browser = await launch();
});

afterAll(async () => {
  if (browser) await closeChromium(browser);
  await stack?.stop();
});

/** Video frames the local stream's peer connection decoded (the server's loopback). */
function loopbackFrames(page: Page): Promise<number> {
  return page.evaluate(async () => {
    const app = (window as unknown as { kurentoDemo: import("../../web/src/demo/app.ts").DemoApp }).kurentoDemo;
    const stats = await app.localStream?.getWebRtcPeer()?.getStats();
    let frames = 0;
    stats?.forEach((s: { type?: string; kind?: string; framesDecoded?: number }) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames = s.framesDecoded ?? 0;
    });
    return frames;
  });
}

it("shows the server's loopback of your own video, plus the local mirror", async () => {
  const config = (await (await fetch(`${stack.url}/getClientConfig`)).json()) as {
    loopbackRemote: boolean;
    loopbackAndLocal: boolean;
  };
  expect(config).toMatchObject({ loopbackRemote: true, loopbackAndLocal: true });
  const page = await openDemo(browser, stack.url);
  try {
    await joinRoom(page, "alice", `loopback-${process.pid}`);
    await waitUntil(page, "the loopback video to decode", async () => (await loopbackFrames(page)) > 0, 45_000);
    // Two tiles: the looped-back stream and the local mirror.
    await page.waitForSelector('[id="video-alice_localStream"]', { timeout: 30_000 });
    const shown = await page.evaluate(() => {
      const app = (window as unknown as { kurentoDemo: import("../../web/src/demo/app.ts").DemoApp }).kurentoDemo;
      const local = app.localStream;
      const thumb = document.getElementById("video-alice_webcam") as HTMLVideoElement | null;
      const mirror = document.getElementById("video-alice_localStream") as HTMLVideoElement | null;
      return {
        displaysRemote: local?.displayMyRemote() ?? false,
        thumbShowsLoopback: thumb?.srcObject === local?.getRemoteMediaStream(),
        mirrorShowsCamera: mirror?.srcObject === local?.getWrStream(),
        muted: [thumb?.muted, mirror?.muted],
      };
    });
    expect(shown).toEqual({
      displaysRemote: true,
      thumbShowsLoopback: true,
      mirrorShowsCamera: true,
      muted: [true, true],
    });
    await waitUntil(page, "the loopback <video> to play", () =>
      page.$eval('[id="video-alice_webcam"]', (v) => (v as HTMLVideoElement).videoWidth > 0),
    );
    await screenshot(page, "media-loopback");
  } finally {
    await page.evaluate(() =>
      (window as unknown as { kurentoDemo: { room: { leave(): Promise<void> } | null } }).kurentoDemo.room?.leave(),
    );
    await page.context().close();
  }
});
