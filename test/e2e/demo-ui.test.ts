/**
 * The demo app in real Chromium against the whole system (as npm start):
 * what a person sees for bad input, a taken name, a server that is down, a
 * denied camera, chat, leaving, eviction by /close and a dropped connection.
 * Media itself is checked in media.test.ts.
 */
import { afterAll, describe, expect, it } from "vitest";
import { closeChromium } from "../helpers/chromium.ts";
import { demoSuite } from "./helpers/suite.ts";
import {
  chatLines,
  fillLogin,
  joinRoom,
  launchDenyingCamera,
  loginError,
  roster,
  screenshot,
  sendChat,
  waitUntil,
} from "./helpers/demo.ts";

const ADMIN_TOKEN = "e2e-admin";
// A media server without filters, as on a machine without GStreamer, so the hat button has to say why it is
// off (hat.test.ts wears the hat where GStreamer is installed). The stack's embedded media server runs in
// this process and reads it at its first getInfo; restored for the files after this one.
process.env.KMS_FILTERS = "off";
afterAll(() => {
  delete process.env.KMS_FILTERS;
});
// The seat is kept 10 s (the default): long enough to resume on a loaded machine.
const suite = demoSuite({ ADMIN_TOKEN, RECONNECT_WINDOW_SECONDS: "10" });
const { page, room } = suite;

describe("login form", () => {
  it("refuses empty, blank and invalid names with a clear message, before contacting the server", async () => {
    const p = await page();
    await p.click("#joinBtn");
    expect(await loginError(p)).toBe("Enter your name.");
    expect(await p.getAttribute("#name", "aria-invalid")).toBe("true");

    await fillLogin(p, "   ", "room");
    await p.click("#joinBtn");
    expect(await p.textContent("#loginErrorText")).toBe("Enter your name.");

    await fillLogin(p, "alice", "");
    await p.click("#joinBtn");
    expect(await p.textContent("#loginErrorText")).toBe("Enter a room name.");
    expect(await p.getAttribute("#roomName", "aria-invalid")).toBe("true");

    await fillLogin(p, "bad\u0001name", "room");
    await p.click("#joinBtn");
    expect(await p.textContent("#loginErrorText")).toBe("Your name must not contain control characters.");
    await screenshot(p, "ui-invalid-name");

    expect((await roster(p)).state).toBeNull();
    expect(await p.isVisible("#login")).toBe(true);
  });

  it("a taken name shows the server's 104 as a sentence, and the page stays on the login form", async () => {
    const name = room("dup");
    const first = await page();
    await joinRoom(first, "alice", name);
    const second = await page();
    await fillLogin(second, "alice", name);
    await second.click("#joinBtn");
    expect(await loginError(second)).toBe(`The name “alice” is already taken in room “${name}”. Choose another name.`);
    expect(await second.getAttribute("#name", "aria-invalid")).toBe("true");
    expect(await second.isVisible("#room")).toBe(false);
    expect(await second.isEnabled("#joinBtn")).toBe(true);
    await screenshot(second, "ui-duplicate-name");
    expect((await roster(first)).participants).toEqual(["alice"]);
  });

  it("a server that is down is reported as unreachable", async () => {
    const p = await page(suite.proxy.httpUrl);
    suite.proxy.refusing = true;
    suite.proxy.dropAll();
    await fillLogin(p, "alice", room("down"));
    await p.click("#joinBtn");
    expect(await loginError(p)).toBe("Can't reach the room server. Check your connection and try again.");
    expect(await p.textContent("#joinBtn")).toBe("Join room");
    await screenshot(p, "ui-server-down");
  });

  it("a denied camera says so and offers to join without camera", async () => {
    const denying = await launchDenyingCamera();
    try {
      const context = await denying.newContext();
      const p = await context.newPage();
      await p.goto(suite.stack.url);
      const name = room("nocam");
      await fillLogin(p, "dora", name);
      await p.click("#joinBtn");
      expect(await loginError(p)).toMatch(/^Camera and microphone access was denied\./);
      expect(await p.isVisible("#joinWithoutCamera")).toBe(true);
      await screenshot(p, "ui-camera-denied");
      await p.click("#joinWithoutCamera");
      await p.waitForSelector("#room:not([hidden])", { timeout: 45_000 });
      expect(await p.isDisabled("#buttonPublish")).toBe(true);
      expect(await p.isDisabled("#buttonVideocam")).toBe(true);
      expect(await p.textContent("#roomTitle")).toBe(name);
      await p.click("#buttonLeaveRoom");
      await p.waitForSelector("#login:not([hidden])");
    } finally {
      await closeChromium(denying);
    }
  });

  it("lists open rooms from /getAllRooms; choosing one fills the room field", async () => {
    const name = room("listed");
    const host = await page();
    await joinRoom(host, "host", name);
    const p = await page();
    const chip = p.locator("#rooms button", { hasText: name });
    await chip.waitFor({ timeout: 30_000 });
    await chip.click();
    expect(await p.inputValue("#roomName")).toBe(name);
  });
});

describe("static assets", () => {
  it("serves the demo, the library bundle and the hat images the bridge points media servers at", async () => {
    for (const [path, type] of [
      ["/", "text/html"],
      ["/kurento-room.js", "javascript"],
      ["/img/mario-wings.png", "image/png"],
      ["/img/wizard.png", "image/png"],
    ] as const) {
      const response = await fetch(`${suite.stack.url}${path}`);
      expect(response.status, path).toBe(200);
      expect(response.headers.get("content-type"), path).toContain(type);
    }
  });
});

describe("in the room", () => {
  it("chat goes both ways; joins and leaves show up; the hat button explains why it is off", async () => {
    const name = room("chat");
    const alice = await page();
    await joinRoom(alice, "alice", name);
    const bob = await page();
    await joinRoom(bob, "bob", name);
    await waitUntil(alice, "alice to see bob", async () => (await chatLines(alice)).includes("* bob joined"));
    expect(await alice.textContent("#peopleCount")).toBe("2 people");

    await sendChat(alice, "hi bob");
    await waitUntil(bob, "bob to get alice's message", async () => (await chatLines(bob)).includes("alice: hi bob"));
    await sendChat(bob, "hi alice <b>not bold</b>");
    await waitUntil(alice, "alice to get bob's reply", async () =>
      (await chatLines(alice)).includes("bob: hi alice <b>not bold</b>"),
    );
    // Bob's own line comes back from the server too, on its own socket: it may trail alice's copy.
    await waitUntil(bob, "bob's own message echoed", async () =>
      (await chatLines(bob)).includes("You: hi alice <b>not bold</b>"),
    );
    expect((await chatLines(alice)).filter((l) => !l.startsWith("*"))).toEqual([
      "You: hi bob",
      "bob: hi alice <b>not bold</b>",
    ]);
    expect((await chatLines(bob)).filter((l) => !l.startsWith("*"))).toEqual([
      "alice: hi bob",
      "You: hi alice <b>not bold</b>",
    ]);
    expect(await alice.locator("#messages b").count()).toBe(0);

    // Narrow screens: nothing sticks out sideways; every control stays reachable.
    await alice.setViewportSize({ width: 390, height: 844 });
    expect(await alice.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    for (const id of ["buttonLeaveRoom", "buttonPublish", "buttonFullscreen", "chatSend"]) {
      const box = await alice.locator(`#${id}`).boundingBox();
      expect(box && box.x >= 0 && box.x + box.width <= 390, id).toBe(true);
    }
    await screenshot(alice, "ui-mobile");
    await alice.setViewportSize({ width: 1280, height: 800 });

    expect(await alice.isDisabled("#buttonHat")).toBe(true);
    expect(await alice.textContent("#hatReason")).toBe("Hat filter unavailable: the media server cannot apply it.");
    await screenshot(alice, "ui-chat");

    await bob.click("#buttonLeaveRoom");
    await bob.waitForSelector("#login:not([hidden])");
    await waitUntil(alice, "alice to see bob leave", async () => (await chatLines(alice)).includes("* bob left"));
    expect((await roster(alice)).participants).toEqual(["alice"]);
    expect(await alice.textContent("#peopleCount")).toBe("1 person");
  });

  it("/close evicts everyone and each page says so", async () => {
    const name = room("closing");
    const alice = await page();
    await joinRoom(alice, "alice", name);
    const bob = await page();
    await joinRoom(bob, "bob", name);
    const response = await fetch(`${suite.stack.url}/close?room=${encodeURIComponent(name)}`, {
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(response.status).toBe(200);
    for (const p of [alice, bob]) {
      await p.waitForSelector("#notice:not([hidden])", { timeout: 30_000 });
      expect(await p.textContent("#noticeTitle")).toBe("You were removed");
      expect(await p.textContent("#noticeText")).toBe(
        `Room “${name}” was closed by the server and everyone in it was asked to leave.`,
      );
      expect((await roster(p)).state).toBeNull();
    }
    await screenshot(alice, "ui-room-closed");
    await alice.click("#noticeBack");
    expect(await alice.isVisible("#login")).toBe(true);
  });

  it("a dropped connection shows 'Reconnecting…', resumes, and nobody is duplicated", async () => {
    const name = room("drop");
    const alice = await page(suite.proxy.httpUrl);
    await joinRoom(alice, "alice", name);
    const bob = await page();
    await joinRoom(bob, "bob", name);
    await waitUntil(alice, "alice to see bob", async () => (await roster(alice)).participants.length === 2);
    await alice.evaluate(() => {
      const app = (
        window as unknown as {
          kurentoDemo: { room: { on(n: string, l: (e: { state: string }) => void): void } | null };
        }
      ).kurentoDemo;
      const seen: string[] = [];
      (window as unknown as { seenStates: string[] }).seenStates = seen;
      app.room?.on("connection-state-changed", (e) => seen.push(e.state));
    });
    // Keep new connections out for a moment so the banner is on screen.
    suite.proxy.refusing = true;
    suite.proxy.dropAll();
    await alice.waitForSelector("#reconnectBanner:not([hidden])", { timeout: 30_000 });
    expect(await alice.textContent("#connectionStatus")).toBe("Reconnecting…");
    await screenshot(alice, "ui-reconnecting");
    suite.proxy.refusing = false;
    await waitUntil(
      alice,
      "alice to reconnect",
      async () => (await chatLines(alice)).includes("* Reconnected"),
      30_000,
    );
    expect(await alice.isHidden("#reconnectBanner")).toBe(true);
    expect(await alice.textContent("#connectionStatus")).toBe("Connected");
    expect(await alice.evaluate(() => (window as unknown as { seenStates: string[] }).seenStates)).toEqual([
      "reconnecting",
      "connected",
    ]);

    await sendChat(alice, "still here");
    await waitUntil(bob, "bob to hear alice", async () => (await chatLines(bob)).includes("alice: still here"));
    await sendChat(bob, "good");
    await waitUntil(alice, "alice to hear bob", async () => (await chatLines(alice)).includes("bob: good"));
    // Bob saw alice join once and never leave; both rosters are exact.
    expect((await chatLines(bob)).filter((l) => l.startsWith("* alice"))).toEqual([]);
    expect((await roster(bob)).participants.sort()).toEqual(["alice", "bob"]);
    expect((await roster(alice)).participants.sort()).toEqual(["alice", "bob"]);
    expect(await bob.textContent("#peopleCount")).toBe("2 people");
  });

  it("a connection down longer than the seat is kept: the page says the place expired and offers to join again", async () => {
    const name = room("expired");
    const alice = await page(suite.proxy.httpUrl);
    await joinRoom(alice, "alice", name);
    const bob = await page();
    await joinRoom(bob, "bob", name);
    suite.proxy.refusing = true;
    suite.proxy.dropAll();
    await waitUntil(
      bob,
      "bob to see alice's seat given up",
      async () => (await chatLines(bob)).includes("* alice left"),
      40_000,
    );
    suite.proxy.refusing = false;
    await alice.waitForSelector("#notice:not([hidden])", { timeout: 30_000 });
    expect(await alice.textContent("#noticeTitle")).toBe("Your place in the room expired");
    expect(await alice.isVisible("#noticeRejoin")).toBe(true);
    await screenshot(alice, "ui-session-expired");
    await alice.click("#noticeRejoin");
    await alice.waitForSelector("#room:not([hidden])", { timeout: 45_000 });
    // Bob joined after alice: he sees her leave (the seat expired), then join again, once each.
    await waitUntil(bob, "bob to see alice come back", async () => (await chatLines(bob)).includes("* alice joined"));
    expect((await chatLines(bob)).filter((l) => l.startsWith("* alice"))).toEqual(["* alice left", "* alice joined"]);
    expect((await roster(bob)).participants.sort()).toEqual(["alice", "bob"]);
    expect((await roster(alice)).participants.sort()).toEqual(["alice", "bob"]);
  });

  it("joining and leaving quickly five times leaves the others with an exact roster", async () => {
    const name = room("churn");
    const bob = await page();
    await joinRoom(bob, "bob", name);
    const alice = await page();
    for (let i = 0; i < 5; i++) {
      await joinRoom(alice, "alice", name);
      await alice.click("#buttonLeaveRoom");
      await alice.waitForSelector("#login:not([hidden])");
    }
    await waitUntil(bob, "bob to see five joins and leaves", async () => {
      const lines = await chatLines(bob);
      return lines.filter((l) => l === "* alice left").length === 5;
    });
    const lines = (await chatLines(bob)).filter((l) => l.startsWith("* alice"));
    expect(lines).toEqual(Array.from({ length: 5 }, () => ["* alice joined", "* alice left"]).flat());
    expect((await roster(bob)).participants).toEqual(["bob"]);
    // The name is free: a sixth join works.
    await joinRoom(alice, "alice", name);
    expect((await roster(alice)).participants.sort()).toEqual(["alice", "bob"]);
  });
});
