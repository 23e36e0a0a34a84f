/**
 * The demo's hat on a real Kurento Media Server, through the whole stack
 * (KMS only: the embedded media server has no filters, and the `e2e`
 * project's demo test checks that the button says so). Alice's fake camera
 * shows a real face (a photograph, helpers/face-clip.ts); she presses the
 * demo's Hat button; the room asks the bridge, which puts a
 * FaceOverlayFilter between her WebRtcEndpoint and PassThrough; Bob's page
 * decodes her video, and the frame he sees is read back from his <video>.
 * Above her face it must show the hat's colours, which it did not before
 * the hat, and does not after it comes off.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { joinRoom, screenshot, waitForRemoteVideo, waitUntil } from "./helpers/demo.ts";
import { HAT_SHARE, HAT_WAIT_MS, hatColour, hatSuite, measure, mostSeen, saveFrame, WAIT_MS } from "./helpers/hat.ts";

const suite = hatSuite();

describe("the hat on a real KMS (KMS only: FaceOverlayFilter; the embedded media server has none)", () => {
  it("the wearer's Hat button puts the hat above her face in the video the viewer decodes, and takes it off", async () => {
    const config = (await (await fetch(`${suite.stack.url}/getClientConfig`)).json()) as { filters: string[] };
    expect(config.filters).toEqual(["hat"]);

    const room = `hat-${process.pid}`;
    const alice = await suite.open(suite.faceBrowser);
    await joinRoom(alice, "alice", room);
    const bob = await suite.open(suite.plainBrowser);
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
    await saveFrame(bob, "alice_webcam", "hat-kms-before");

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
    await saveFrame(bob, "alice_webcam", "hat-kms-on");
    await screenshot(bob, "hat-kms-viewer");
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

    // The bridge's insertion no longer cuts the link KMS just made.
    const log = readFileSync(suite.stack.kmsLogFile ?? "", "utf8");
    expect(log).not.toMatch(/does not belong to element/);
  });
});
