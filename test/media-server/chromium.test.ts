import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MediaServerHandle, startMediaServer } from "../../media-server/index.ts";
import { closeChromium, launchChromium, mediaContext } from "../helpers/chromium.ts";
import {
  acceptAnswer,
  closePagePeer,
  offerFromPage,
  type ReceivedMedia,
  receivedMedia,
  startBlankPageServer,
} from "./helpers/browser.ts";
import { connectKurento, type KurentoClient } from "./helpers/kurento.ts";
import { waitFor } from "./helpers/werift-peer.ts";

let server: MediaServerHandle;
let pages: Awaited<ReturnType<typeof startBlankPageServer>>;
let browser: Browser;
let client: KurentoClient;

beforeAll(async () => {
  server = await startMediaServer({ port: 0, webrtc: { loopbackOnly: true }, sessionGraceMs: 500, log: () => {} });
  pages = await startBlankPageServer();
  browser = await launchChromium();
  client = await connectKurento(server.url);
});

afterAll(async () => {
  client?.close();
  if (browser) await closeChromium(browser);
  await pages?.close();
  await server?.close();
});

async function openPage(): Promise<Page> {
  const context = await mediaContext(browser);
  const page = await context.newPage();
  await page.goto(pages.url);
  return page;
}

async function decodedMedia(page: Page): Promise<ReceivedMedia> {
  let media: ReceivedMedia | undefined;
  await waitFor(
    async () => {
      media = await receivedMedia(page);
      return media.framesDecoded > 10 && media.audioPacketsReceived > 10;
    },
    30_000,
    "decoded video and received audio in Chromium",
  );
  if (!media) throw new Error("no stats");
  return media;
}

describe("Chromium through the embedded media server", () => {
  it("a subscriber page decodes the fake camera and receives the audio a publisher page sends", async () => {
    const pipeline = await client.create("MediaPipeline");
    const publisherEndpoint = await pipeline.create("WebRtcEndpoint");
    const subscriberEndpoint = await pipeline.create("WebRtcEndpoint");
    await publisherEndpoint.connect(subscriberEndpoint);

    const publisherPage = await openPage();
    const subscriberPage = await openPage();

    const publisherOffer = await offerFromPage(publisherPage, "publish", publisherEndpoint);
    await acceptAnswer(publisherPage, await publisherEndpoint.processOffer(publisherOffer));
    await publisherEndpoint.gatherCandidates();

    const subscriberOffer = await offerFromPage(subscriberPage, "subscribe", subscriberEndpoint);
    await acceptAnswer(subscriberPage, await subscriberEndpoint.processOffer(subscriberOffer));
    await subscriberEndpoint.gatherCandidates();

    const media = await decodedMedia(subscriberPage);
    expect(media.framesDecoded).toBeGreaterThan(0);
    expect(media.audioPacketsReceived).toBeGreaterThan(0);
    expect(media.frameWidth).toBeGreaterThan(0);
    expect(media.videoCodec).toBe("video/VP8");

    await closePagePeer(publisherPage);
    await closePagePeer(subscriberPage);
    await publisherPage.context().close();
    await subscriberPage.context().close();
    await pipeline.release();
    expect(server.stats()).toMatchObject({ objects: 0, pipelines: 0 });
  });

  it("a page sees itself through WebRtcEndpoint → PassThrough → the same WebRtcEndpoint", async () => {
    const pipeline = await client.create("MediaPipeline");
    const endpoint = await pipeline.create("WebRtcEndpoint");
    const passThrough = await pipeline.create("PassThrough");
    await endpoint.connect(passThrough);
    await passThrough.connect(endpoint);
    expect(await endpoint.getSourceConnections("VIDEO")).toEqual([expect.objectContaining({ type: "VIDEO" })]);

    const page = await openPage();
    const offer = await offerFromPage(page, "loopback", endpoint);
    const answer = await endpoint.processOffer(offer);
    expect(answer).toMatch(/m=video [\s\S]*a=sendrecv/);
    await acceptAnswer(page, answer);
    await endpoint.gatherCandidates();

    const media = await decodedMedia(page);
    expect(media.framesDecoded).toBeGreaterThan(0);
    expect(media.audioPacketsReceived).toBeGreaterThan(0);

    await closePagePeer(page);
    await page.context().close();
    await pipeline.release();
    expect(server.stats()).toMatchObject({ objects: 0, pipelines: 0 });
  });
});
