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
import { describe, expect, it } from "vitest";
import { joinRoom, screenshot, waitForRemoteVideo, waitUntil } from "./helpers/demo.ts";
import { HAT_SHARE, HAT_WAIT_MS, hatColour, hatSuite, measure, mostSeen, saveFrame, WAIT_MS } from "./helpers/hat.ts";

const suite = hatSuite();

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
    const config = (await (await fetch(`${suite.stack.url}/getClientConfig`)).json()) as { filters: string[] };
    // The embedded server reports FaceOverlayFilter (GStreamer is installed by .ci/run), so the worker lists the hat.
    expect(config.filters).toEqual(["hat"]);
    expect(gstChildren()).toBe(0);

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
