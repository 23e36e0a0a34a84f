/**
 * Simulcast on the embedded media server: a Chromium publisher at 1280x720
 * sends three RID layers, and each subscriber receives the one it asks for
 * (`stream.setVideoQuality`): a subscriber asking "high" decodes a wider
 * picture than one asking "low", and switching quality keeps the video
 * decoding (the server switches at a keyframe of the new layer).
 */
import type { Browser, Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { mediaContext } from "../helpers/chromium.ts";
import { joinRoom, waitForRemoteVideo, waitUntil } from "./helpers/demo.ts";
import { demoSuite } from "./helpers/suite.ts";

const suite = demoSuite({});
const { page, room } = suite;
/** Bound on the media reacting (a layer switch waits for a keyframe; Chromium ramps its layers up): generous. */
const WAIT_MS = 60_000;

type Quality = "high" | "medium" | "low";
type DemoStream = {
  isLocal(): boolean;
  getGlobalID(): string;
  getWebRtcPeer(): RTCPeerConnection | null;
  setVideoQuality(quality: Quality): Promise<void>;
};
type DemoWindow = Window & {
  kurentoDemo: { room: { simulcast: boolean; getStreams(): DemoStream[] } | null };
};

/** The demo page with a camera of 1280x720 (the shared helper caps it at 320x240: too small for three layers). */
async function publisherPage(browser: Browser, url: string): Promise<Page> {
  const context = await mediaContext(browser, { width: 1280, height: 720, exact: true });
  const opened = await context.newPage();
  suite.closeAfterTest(opened);
  await opened.goto(url);
  await opened.waitForFunction(() => (window as unknown as Partial<DemoWindow>).kurentoDemo !== undefined, undefined, {
    timeout: 30_000,
  });
  return opened;
}

/** The decoded width and frame count of the simulcast publisher's video on a page. */
async function inboundVideo(p: Page): Promise<{ width: number; frames: number }> {
  return p.evaluate(async () => {
    const stream = (window as unknown as DemoWindow).kurentoDemo.room
      ?.getStreams()
      .find((s) => s.getGlobalID() === "pub_webcam");
    const stats = await stream?.getWebRtcPeer()?.getStats();
    let width = 0;
    let frames = 0;
    stats?.forEach((report: { type?: string; kind?: string; frameWidth?: number; framesDecoded?: number }) => {
      if (report.type !== "inbound-rtp" || report.kind !== "video") return;
      width = report.frameWidth ?? 0;
      frames = report.framesDecoded ?? 0;
    });
    return { width, frames };
  });
}

/** Each layer the page sends: RID, width, bytes, frame rate and what limits it (Chromium's outbound-rtp stats). */
async function outbound(p: Page): Promise<unknown[]> {
  return p.evaluate(async () => {
    const stream = (window as unknown as DemoWindow).kurentoDemo.room?.getStreams().find((s) => s.isLocal());
    const stats = await stream?.getWebRtcPeer()?.getStats();
    const rows: unknown[] = [];
    stats?.forEach((r: Record<string, unknown>) => {
      if (r.type === "outbound-rtp" && r.kind === "video")
        rows.push({
          rid: r.rid,
          width: r.frameWidth,
          bytes: r.bytesSent,
          fps: r.framesPerSecond,
          limit: r.qualityLimitationReason,
          target: r.targetBitrate,
        });
      if (r.type === "candidate-pair" && r.nominated)
        rows.push({ availableOutgoingBitrate: r.availableOutgoingBitrate });
    });
    return rows;
  });
}

async function askQuality(p: Page, quality: Quality): Promise<void> {
  await p.evaluate(async (wanted) => {
    const stream = (window as unknown as DemoWindow).kurentoDemo.room
      ?.getStreams()
      .find((s) => s.getGlobalID() === "pub_webcam");
    if (!stream) throw new Error("no remote stream");
    await stream.setVideoQuality(wanted);
  }, quality);
}

/** The publisher's page, for the failure message: what each of its layers sends. */
let publisherForDiagnosis: Page | undefined;

async function waitForWidth(p: Page, what: string, ok: (width: number) => boolean): Promise<number> {
  let last = 0;
  try {
    await waitUntil(
      p,
      what,
      async () => {
        last = (await inboundVideo(p)).width;
        return ok(last);
      },
      WAIT_MS,
    );
  } catch (error) {
    const layers = publisherForDiagnosis ? JSON.stringify(await outbound(publisherForDiagnosis)) : "unknown";
    throw new Error(`${(error as Error).message}; last width ${last}; the publisher's layers: ${layers}`);
  }
  return last;
}

describe("simulcast (embedded media server)", () => {
  it("gives each subscriber the layer it asks for, and switching keeps the video playing", async () => {
    const name = room("simulcast");
    const publisher = await publisherPage(suite.browser, suite.stack.url);
    publisherForDiagnosis = publisher;
    await joinRoom(publisher, "pub", name);
    expect(await publisher.evaluate(() => (window as unknown as DemoWindow).kurentoDemo.room?.simulcast)).toBe(true);
    const high = await page();
    await joinRoom(high, "hi", name);
    const low = await page();
    await joinRoom(low, "lo", name);
    // The subscribers publish their own (small, single-layer) webcams too, and see each other's.
    await waitForRemoteVideo(high, ["pub_webcam", "lo_webcam"], WAIT_MS);
    await waitForRemoteVideo(low, ["pub_webcam", "hi_webcam"], WAIT_MS);
    // Pin each subscriber's own tile as its main video: the demo's active-speaker choice would
    // otherwise ask its own qualities (thumbnails low, main high) in the middle of the test.
    for (const [p, user] of [
      [high, "hi"],
      [low, "lo"],
    ] as const)
      await p.click(`[id="thumb-${user}_webcam"]`);
    await askQuality(high, "high");
    await askQuality(low, "low");

    // Chromium sends 320, 640 and 1280 wide layers; on a busy machine its CPU adaptation may scale the
    // top one down, so "high" only has to be at least the middle layer's width.
    const highWidth = await waitForWidth(high, "the high subscriber decodes the top layer", (w) => w >= 640);
    const lowWidth = await waitForWidth(low, "the low subscriber decodes the smallest layer", (w) => w > 0 && w <= 320);
    expect(highWidth).toBeGreaterThan(lowWidth);

    // Swap: each switch waits for the new layer's keyframe, and frames keep coming throughout.
    const before = await Promise.all([inboundVideo(high), inboundVideo(low)]);
    await askQuality(high, "low");
    await askQuality(low, "high");
    await waitForWidth(high, "the first subscriber switched down", (w) => w > 0 && w <= 320);
    await waitForWidth(low, "the second subscriber switched up", (w) => w >= 640);
    const afterSwitch = await Promise.all([inboundVideo(high), inboundVideo(low)]);
    for (const [index, p] of [high, low].entries()) {
      const switched = afterSwitch[index]?.frames ?? 0;
      expect(switched).toBeGreaterThan(before[index]?.frames ?? 0);
      // Decoding goes on after the switch: ten more frames (bounded, not timed).
      await waitUntil(
        p,
        "frames after the switch",
        async () => (await inboundVideo(p)).frames >= switched + 10,
        WAIT_MS,
      );
    }

    // Medium: the middle layer.
    await askQuality(high, "medium");
    await waitForWidth(high, "the first subscriber gets the middle layer", (w) => w > 320);
  });
});
