/**
 * Moderation in the demo, in real Chromium against the whole system: a
 * moderator (a join token with role "moderator", handed to the demo in its
 * link as `npm run join-token` prints it) sees "Stop video" and "Remove" on
 * the others' tiles; the person it acts on is told who did it. A participant
 * with a plain token sees no such buttons.
 */
import { describe, expect, it } from "vitest";
import { signJoinToken } from "../../protocol/tokens/join-token.ts";
import { chatLines, roster, screenshot, waitUntil } from "./helpers/demo.ts";
import { demoSuite } from "./helpers/suite.ts";

const SECRET = "e2e-join-token-secret";
const suite = demoSuite({ ADMIN_TOKEN: "e2e-admin", JOIN_TOKEN_SECRET: SECRET });

/** Opens the demo with the link an application would hand out, and joins (camera on). */
async function enter(room: string, user: string, role?: "moderator") {
  const token = await signJoinToken(SECRET, { room, user, ...(role ? { role } : {}) });
  const page = await suite.page(`${suite.stack.url}/?${new URLSearchParams({ room, user, token })}`);
  expect(await page.inputValue("#name")).toBe(user);
  expect(await page.inputValue("#roomName")).toBe(room);
  await page.click("#joinBtn");
  await page.waitForSelector("#room:not([hidden])", { timeout: 45_000 });
  return page;
}

describe("moderation in the demo", () => {
  it("a moderator stops a participant's video, then removes the participant; each time the participant is told", async () => {
    const room = suite.room("moderated");
    const mia = await enter(room, "mia", "moderator");
    const bob = await enter(room, "bob");
    const bobTile = "#thumb-bob_webcam";
    await mia.waitForSelector(`${bobTile} .thumb-moderate`, { timeout: 60_000 });
    // bob, not a moderator, has no such buttons on mia's tile.
    await bob.waitForSelector("#thumb-mia_webcam", { timeout: 60_000 });
    expect(await bob.locator("#thumb-mia_webcam .thumb-moderate").count()).toBe(0);
    await screenshot(mia, "ui-moderator-tiles");

    await mia.click(`${bobTile} button[aria-label="Stop bob's video"]`);
    await waitUntil(bob, "bob is told his video was stopped", async () =>
      (await chatLines(bob)).includes("* mia stopped your video; publish again to share it"),
    );
    await bob.waitForSelector("#buttonPublish:text('Publish')", { timeout: 30_000 });
    await mia.waitForSelector(bobTile, { state: "detached", timeout: 30_000 });
    expect(await chatLines(mia)).toContain("* You stopped the video of bob");

    // bob publishes again; this time mia removes him.
    await bob.click("#buttonPublish");
    await mia.waitForSelector(`${bobTile} .thumb-moderate`, { timeout: 60_000 });
    await mia.click(`${bobTile} button[aria-label="Remove bob from the room"]`);
    await bob.waitForSelector("#notice:not([hidden])", { timeout: 30_000 });
    expect(await bob.textContent("#noticeTitle")).toBe("You were removed");
    expect(await bob.textContent("#noticeText")).toBe(`mia removed you from room “${room}”.`);
    await screenshot(bob, "ui-removed-by-moderator");
    await waitUntil(mia, "bob gone from mia's roster", async () => (await roster(mia)).participants.join() === "mia");
  });
});
