/**
 * The demo with real media: Chromium's fake camera → the worker → the media
 * bridge → the media server → other Chromium pages. Every remote stream must
 * decode frames (`framesDecoded > 0`). The media server is the embedded one
 * (project `e2e`) or a real KMS (project `e2e-kms`, MEDIA_BACKEND=kms).
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { mediaContext } from "../helpers/chromium.ts";
import {
  chatLines,
  joinRoom,
  remoteFrames,
  roster,
  screenshot,
  waitForRemoteVideo,
  waitUntil,
} from "./helpers/demo.ts";
import { demoSuite } from "./helpers/suite.ts";
import { mediaBackendFromEnv } from "../../scripts/system.ts";

const BACKEND = mediaBackendFromEnv();

/**
 * A dropped page keeps its seat far longer than the client's own reconnection
 * budget (30 s by default): however slow the machine, a test that holds a
 * page disconnected hits the client's budget, never the seat's expiry.
 */
const SEAT_WINDOW_SECONDS = 120;
const suite = demoSuite({ RECONNECT_WINDOW_SECONDS: String(SEAT_WINDOW_SECONDS) });
const { page, room } = suite;
/** Bound on a page reacting to something the server or another page did: generous, for a busy machine. */
const WAIT_MS = 30_000;

/** Opens a page per user and joins them one after the other. */
async function everyoneJoins(name: string, users: readonly string[]): Promise<Page[]> {
  const joined: Page[] = [];
  for (const user of users) {
    const p = await page();
    await joinRoom(p, user, name);
    joined.push(p);
  }
  return joined;
}

async function leave(p: Page): Promise<void> {
  await p.click("#buttonLeaveRoom");
  await p.waitForSelector("#login:not([hidden])", { timeout: WAIT_MS });
}

/** A thumbnail's state line and Subscribe / Unsubscribe button text. */
async function tileText(p: Page, id: string): Promise<{ state: string; action: string }> {
  return p.$eval(`[id="thumb-${id}"]`, (tile) => ({
    state: tile.querySelector(".thumb-state")?.textContent ?? "",
    action: tile.querySelector(".thumb-action")?.textContent ?? "",
  }));
}

/**
 * Clicks a thumbnail's Subscribe / Unsubscribe button and reads the tile in
 * the same task as the click: what the user sees before any answer arrives.
 */
async function clickTileAction(p: Page, id: string): Promise<{ state: string; action: string }> {
  return p.$eval(`[id="thumb-${id}"]`, (tile) => {
    (tile.querySelector(".thumb-action") as HTMLButtonElement).click();
    return {
      state: tile.querySelector(".thumb-state")?.textContent ?? "",
      action: tile.querySelector(".thumb-action")?.textContent ?? "",
    };
  });
}

async function framesFrom(p: Page, id: string): Promise<number> {
  return (await remoteFrames(p)).find((s) => s.id === id)?.framesDecoded ?? 0;
}

async function tiles(p: Page): Promise<string[]> {
  return p.$$eval("#participants .thumb", (nodes) => nodes.map((n) => (n as HTMLElement).dataset.stream ?? ""));
}

/** The id the demo gives a stream's thumbnail video. */
function videoSelector(id: string): string {
  return `[id="video-${id}"]`;
}

describe("seeing each other", () => {
  it("two users decode each other's video and hear each other's audio", async () => {
    const [alice, bob] = (await everyoneJoins(room("two"), ["alice", "bob"])) as [Page, Page];
    const atAlice = await waitForRemoteVideo(alice, ["bob_webcam"]);
    const atBob = await waitForRemoteVideo(bob, ["alice_webcam"]);
    for (const stream of [...atAlice, ...atBob]) {
      expect(stream.framesDecoded).toBeGreaterThan(0);
      expect(stream.audioPackets).toBeGreaterThan(0);
    }
    // The stream turns live when its negotiation has finished, which may end after the first frames
    // decode (seen once on KMS in a loaded fresh-clone run): waited for, not sampled.
    for (const [p, id] of [
      [alice, "bob_webcam"],
      [bob, "alice_webcam"],
    ] as const)
      await waitUntil(p, `${id} live`, async () => (await remoteFrames(p)).find((s) => s.id === id)?.status === "live");
    // The thumbnail <video> plays it (id video-<user>_webcam), at the camera's size.
    await waitUntil(alice, "bob's video element to play", () =>
      alice.$eval(
        videoSelector("bob_webcam"),
        (v) => (v as HTMLVideoElement).videoWidth > 0 && !(v as HTMLVideoElement).paused,
      ),
    );
    expect(await tiles(alice)).toEqual(["alice_webcam", "bob_webcam"]);
    await screenshot(alice, "media-two-users");
  });

  it("four users: every page decodes the three others", async () => {
    const users = ["ann", "ben", "cat", "dan"];
    const joined = await everyoneJoins(room("four"), users);
    // Twelve subscriptions on one machine: wait for all pages at once, generously (bounded).
    const decoded = await Promise.all(
      joined.map((p, index) =>
        waitForRemoteVideo(
          p,
          users.filter((_, i) => i !== index).map((u) => `${u}_webcam`),
          120_000,
        ),
      ),
    );
    for (const [index, streams] of decoded.entries()) {
      expect(streams.map((s) => s.framesDecoded > 0)).toEqual([true, true, true]);
      expect((await tiles(joined[index]!)).sort()).toEqual(users.map((u) => `${u}_webcam`).sort());
    }
    // The seed's rule: four thumbnails are 14% wide each.
    const width = await joined[0]!.$eval("#participants", (el) =>
      getComputedStyle(el).getPropertyValue("--thumb-width").trim(),
    );
    expect(width).toBe("14%");
    await joined[0]!.click(`[id="thumb-cat_webcam"]`);
    await waitUntil(
      joined[0]!,
      "cat in the main view",
      async () => (await joined[0]!.textContent("#mainName")) === "cat",
    );
    // The main view plays cat's video before the picture is taken.
    await waitUntil(joined[0]!, "cat's video in the main view to play", () =>
      joined[0]!.$eval("#main-video-element", (v) => (v as HTMLVideoElement).videoWidth > 0),
    );
    await screenshot(joined[0]!, "media-four-users");
  }, 300_000);
});

describe("publishing and subscribing", () => {
  it("unpublish removes the video at the others; publishing again brings it back", async () => {
    const [alice, bob, carol] = (await everyoneJoins(room("unpub"), ["alice", "bob", "carol"])) as [Page, Page, Page];
    await waitForRemoteVideo(bob, ["alice_webcam", "carol_webcam"]);
    await waitForRemoteVideo(carol, ["alice_webcam", "bob_webcam"]);

    await alice.click("#buttonPublish");
    await waitUntil(
      alice,
      "alice's button to offer Publish",
      async () => (await alice.textContent("#buttonPublish")) === "Publish",
    );
    for (const other of [bob, carol]) {
      await other.waitForSelector(videoSelector("alice_webcam"), { state: "detached", timeout: WAIT_MS });
      expect((await remoteFrames(other)).map((s) => s.id)).not.toContain("alice_webcam");
      expect(await tiles(other)).not.toContain("alice_webcam");
    }
    expect(await alice.textContent('[id="thumb-alice_webcam"] .thumb-state')).toBe("Not published");
    await screenshot(bob, "media-after-unpublish");

    await alice.click("#buttonPublish");
    await waitForRemoteVideo(bob, ["alice_webcam", "carol_webcam"]);
    await waitForRemoteVideo(carol, ["alice_webcam", "bob_webcam"]);
  });

  it("unsubscribe stops receiving one stream (the others still receive it); subscribe resumes it", async () => {
    const [alice, bob, carol] = (await everyoneJoins(room("unsub"), ["alice", "bob", "carol"])) as [Page, Page, Page];
    await waitForRemoteVideo(bob, ["alice_webcam", "carol_webcam"]);
    await waitForRemoteVideo(alice, ["bob_webcam", "carol_webcam"]);

    expect(await tileText(bob, "alice_webcam")).toEqual({ state: "", action: "Unsubscribe" });
    await bob.evaluate(() => {
      const w = window as unknown as {
        kurentoDemo: import("../../web/src/demo/app.ts").DemoApp;
        unsubscribed?: boolean;
      };
      w.kurentoDemo.room?.once("stream-unsubscribed", () => {
        w.unsubscribed = true;
      });
    });
    // The tile says so at once, in the click's own task: not after the server's answer.
    expect(await clickTileAction(bob, "alice_webcam")).toEqual({ state: "Not receiving", action: "Subscribe" });
    await waitUntil(
      bob,
      "bob to stop receiving alice",
      async () => (await remoteFrames(bob)).find((s) => s.id === "alice_webcam")?.status === "idle",
    );
    expect(await bob.$eval(videoSelector("alice_webcam"), (v) => (v as HTMLVideoElement).srcObject)).toBeNull();
    // Still so once the server answered (the tile is drawn again then).
    await waitUntil(bob, "the unsubscription to be answered", () =>
      bob.evaluate(() => (window as unknown as { unsubscribed?: boolean }).unsubscribed === true),
    );
    expect(await tileText(bob, "alice_webcam")).toEqual({ state: "Not receiving", action: "Subscribe" });
    // Carol still receives alice: her frames keep coming. (Once, on KMS in a loaded fresh-clone run,
    // they took over 30 s to: the bound is a guard against a hang, not a measure.)
    const before = await framesFrom(carol, "alice_webcam");
    await waitUntil(
      carol,
      "carol's frames from alice to grow",
      async () => (await framesFrom(carol, "alice_webcam")) > before + 5,
      90_000,
    );
    await screenshot(bob, "media-unsubscribed");

    expect(await clickTileAction(bob, "alice_webcam")).toEqual({ state: "Connecting…", action: "Unsubscribe" });
    await waitForRemoteVideo(bob, ["alice_webcam", "carol_webcam"]);
    await waitUntil(
      bob,
      "alice's tile to show her live again",
      async () =>
        JSON.stringify(await tileText(bob, "alice_webcam")) === JSON.stringify({ state: "", action: "Unsubscribe" }),
    );
  });

  it("leaving removes the user's video at the others", async () => {
    const [alice, bob] = (await everyoneJoins(room("leave"), ["alice", "bob"])) as [Page, Page];
    await waitForRemoteVideo(bob, ["alice_webcam"]);
    await leave(alice);
    await bob.waitForSelector(videoSelector("alice_webcam"), { state: "detached", timeout: WAIT_MS });
    await waitUntil(bob, "bob to see alice leave", async () => (await chatLines(bob)).includes("* alice left"));
    expect(await tiles(bob)).toEqual(["bob_webcam"]);
    expect((await roster(bob)).participants).toEqual(["bob"]);
  });

  it("one user joins and leaves quickly five times: no leftovers, and the sixth time works", async () => {
    const name = room("churn");
    const [bob] = (await everyoneJoins(name, ["bob"])) as [Page];
    const alice = await page();
    for (let i = 0; i < 5; i++) {
      await joinRoom(alice, "alice", name);
      await leave(alice);
    }
    await waitUntil(
      bob,
      "five leaves at bob",
      async () => (await chatLines(bob)).filter((l) => l === "* alice left").length === 5,
    );
    await bob.waitForSelector(videoSelector("alice_webcam"), { state: "detached", timeout: WAIT_MS });
    expect(await tiles(bob)).toEqual(["bob_webcam"]);
    expect((await remoteFrames(bob)).map((s) => s.id)).toEqual([]);
    // Only bob's publisher is left on the media server.
    await waitUntil(bob, "the bridge to hold bob's media only", async () => {
      const held = suite.stack.bridge.stats().rooms.find((r) => r.room === name);
      return held !== undefined && held.publishers === 1 && held.subscriptions === 0;
    });
    await joinRoom(alice, "alice", name);
    await waitForRemoteVideo(bob, ["alice_webcam"]);
    await waitForRemoteVideo(alice, ["bob_webcam"]);
  });
});

describe("controls", () => {
  it("mute mic, stop camera, full screen and the chat panel do what they say", async () => {
    const [alice, bob] = (await everyoneJoins(room("controls"), ["alice", "bob"])) as [Page, Page];
    await waitForRemoteVideo(bob, ["alice_webcam"]);
    const local = () =>
      alice.evaluate(() => {
        const stream = (
          window as unknown as {
            kurentoDemo: { localStream: { isAudioMuted(): boolean; isVideoMuted(): boolean } | null };
          }
        ).kurentoDemo.localStream;
        return { audio: stream?.isAudioMuted() ?? null, video: stream?.isVideoMuted() ?? null };
      });
    expect(await local()).toEqual({ audio: false, video: false });
    await alice.click("#buttonVolume");
    expect(await alice.textContent("#buttonVolume")).toBe("Unmute mic");
    expect(await alice.getAttribute("#buttonVolume", "aria-pressed")).toBe("true");
    await alice.click("#buttonVideocam");
    expect(await alice.textContent("#buttonVideocam")).toBe("Start camera");
    expect(await local()).toEqual({ audio: true, video: true });
    expect(await alice.textContent('[id="thumb-alice_webcam"] .thumb-state')).toBe("Camera off");
    await screenshot(alice, "media-muted");
    await alice.click("#buttonVolume");
    await alice.click("#buttonVideocam");
    expect(await local()).toEqual({ audio: false, video: false });
    expect(await alice.textContent('[id="thumb-alice_webcam"] .thumb-state')).toBe("");

    // The button follows the browser's fullscreenchange event, which comes a
    // rendering frame after document.fullscreenElement is set: wait for both.
    const fullScreen = () =>
      alice.evaluate(() => ({
        on: document.fullscreenElement !== null,
        button: document.getElementById("buttonFullscreen")?.textContent ?? "",
      }));
    expect(await fullScreen()).toEqual({ on: false, button: "Full screen" });
    await alice.click("#buttonFullscreen");
    await waitUntil(alice, "full screen, and the button to offer leaving it", async () => {
      const now = await fullScreen();
      return now.on && now.button === "Exit full screen";
    });
    await alice.click("#buttonFullscreen");
    await waitUntil(alice, "full screen to end, and the button to offer it again", async () => {
      const now = await fullScreen();
      return !now.on && now.button === "Full screen";
    });

    await alice.click("#buttonChat");
    expect(await alice.isHidden("#chat")).toBe(true);
    await bob.fill("#chatInput", "are you there?");
    await bob.click("#chatSend");
    await alice.waitForSelector("#unread:not([hidden])", { timeout: WAIT_MS });
    expect(await alice.textContent("#unread")).toBe("1");
    await alice.click("#buttonChat");
    expect(await alice.isVisible("#chat")).toBe(true);
    expect(await alice.isHidden("#unread")).toBe(true);
    expect(await chatLines(alice)).toContain("bob: are you there?");
  });
});

describe("media loss", () => {
  const restart = BACKEND === "kms" ? "KMS killed (SIGKILL) and started again" : "the embedded media server restarted";
  it(`${restart}: mediaError is shown, publish and subscriptions are negotiated again, video decodes again`, async () => {
    const [alice, bob] = (await everyoneJoins(room("restart"), ["alice", "bob"])) as [Page, Page];
    await waitForRemoteVideo(alice, ["bob_webcam"]);
    await waitForRemoteVideo(bob, ["alice_webcam"]);
    type PeerWindow = Window & {
      kurentoDemo: import("../../web/src/demo/app.ts").DemoApp;
      oldPeers: Array<RTCPeerConnection | null>;
    };
    const rememberPeers = (p: Page) =>
      p.evaluate(() => {
        const w = window as unknown as PeerWindow;
        w.oldPeers = w.kurentoDemo.room?.getStreams().map((s) => s.getWebRtcPeer()) ?? [];
        return w.oldPeers.length;
      });
    expect(await rememberPeers(alice)).toBe(2);
    expect(await rememberPeers(bob)).toBe(2);

    await suite.stack.restartMediaServer();
    for (const p of [alice, bob]) {
      // The banner hides again once media is restored; its text stays.
      await waitUntil(
        p,
        "the media error to be shown",
        async () => ((await p.textContent("#mediaErrorText")) ?? "") !== "",
        WAIT_MS,
      );
    }
    // Every stream runs on a new peer connection and decodes again.
    for (const [p, other] of [
      [alice, "bob_webcam"],
      [bob, "alice_webcam"],
    ] as const) {
      await waitUntil(
        p,
        "new peer connections",
        () =>
          p.evaluate(() => {
            const w = window as unknown as PeerWindow;
            const streams = w.kurentoDemo.room?.getStreams() ?? [];
            return (
              streams.length === 2 &&
              streams.every((s) => s.status === "live" && !w.oldPeers.includes(s.getWebRtcPeer()))
            );
          }),
        WAIT_MS * 2,
      );
      const streams = await waitForRemoteVideo(p, [other]);
      expect(streams[0]?.framesDecoded).toBeGreaterThan(0);
      await waitUntil(p, "the recovery message", async () =>
        (await chatLines(p)).includes("* Your camera is published again"),
      );
    }
    await screenshot(alice, "media-recovered");
  });
});

describe("connection loss", () => {
  it("a dropped signalling connection resumes; media keeps flowing and nobody is duplicated", async () => {
    const name = room("drop");
    const alice = await page(suite.proxy.httpUrl);
    await joinRoom(alice, "alice", name);
    const [bob] = (await everyoneJoins(name, ["bob"])) as [Page];
    await waitForRemoteVideo(alice, ["bob_webcam"]);
    await waitForRemoteVideo(bob, ["alice_webcam"]);

    // Alice's client gives up after 30 s of trying (its default budget); the
    // seat waits far longer (SEAT_WINDOW_SECONDS). So the server stays
    // unreachable for at most 20 s of this test, whatever the machine's speed.
    suite.proxy.refusing = true;
    suite.proxy.dropAll();
    const unreachableUntil = Date.now() + 20_000;
    await alice.waitForSelector("#reconnectBanner:not([hidden])", { timeout: 20_000 });
    // Media does not go through the signalling socket: it keeps flowing meanwhile.
    const during = await framesFrom(bob, "alice_webcam");
    let aliceStateWhenFramesGrew = "";
    await waitUntil(
      bob,
      "frames from alice while she reconnects",
      async () => {
        if ((await framesFrom(bob, "alice_webcam")) <= during + 5) return false;
        aliceStateWhenFramesGrew = (await roster(alice)).state ?? "";
        return true;
      },
      Math.max(0, unreachableUntil - Date.now()),
    );
    suite.proxy.refusing = false;
    expect(aliceStateWhenFramesGrew).toBe("reconnecting");
    await waitUntil(
      alice,
      "alice to reconnect",
      async () => (await chatLines(alice)).includes("* Reconnected"),
      WAIT_MS,
    );
    expect((await roster(alice)).state).toBe("connected");

    const after = await framesFrom(alice, "bob_webcam");
    await waitUntil(
      alice,
      "frames from bob after the resume",
      async () => (await framesFrom(alice, "bob_webcam")) > after + 5,
    );
    expect(await tiles(alice)).toEqual(["alice_webcam", "bob_webcam"]);
    expect(await tiles(bob)).toEqual(["bob_webcam", "alice_webcam"]);
    expect((await chatLines(bob)).filter((l) => l.startsWith("* alice"))).toEqual([]);
    expect((await roster(bob)).participants.sort()).toEqual(["alice", "bob"]);
  });
});

/** A page of the server's origin with the library exactly as served to applications (web/dist/kurento-room.js) as `window.kurentoLib`. */
async function libraryPage(): Promise<Page> {
  const context = await mediaContext(suite.browser);
  const p = await context.newPage();
  suite.closeAfterTest(p);
  await p.goto(`${suite.stack.url}/getClientConfig`);
  await p.addScriptTag({
    type: "module",
    content: 'import * as lib from "/kurento-room.js"; window.kurentoLib = lib;',
  });
  await p.waitForFunction(() => "kurentoLib" in window);
  return p;
}

describe("the library bundle in a page", () => {
  // Embedded media server only: through a real KMS 7.2 the loopback (endpoint → PassThrough → endpoint) never
  // echoed a message within the 60 s bound (a conformance difference listed in docs/testing.md, not yet explained).
  if (BACKEND === "embedded")
    it("sendData goes over the published stream's DataChannel and comes back through the server loopback (embedded media server only)", async () => {
      const p = await libraryPage();
      const result = await p.evaluate(
        async ({ roomName }) => {
          const lib = (window as unknown as { kurentoLib: typeof import("../../web/src/client/index.ts") }).kurentoLib;
          const kurento = new lib.KurentoRoom(`ws://${location.host}/room`);
          const room = kurento.Room({ room: roomName, user: "dana", dataChannels: true });
          const camera = kurento.Stream(room, { data: true });
          camera.subscribeToMyRemote();
          await camera.init();
          await room.connect();
          // Before the channel exists: refused, with the library's own error.
          let early: { name: string; reason: string; message: string } | null = null;
          try {
            camera.sendData("too early");
          } catch (error) {
            const e = error as { name: string; reason: string; message: string };
            early = { name: e.name, reason: e.reason, message: e.message };
          }
          await camera.publish();
          const received: string[] = [];
          camera.on("data", ({ data }) => received.push(String(data)));
          const errors: string[] = [];
          // Bounded: 60 s (a busy machine opens the channel late, not never).
          for (let i = 0; i < 300 && received.length === 0; i++) {
            try {
              camera.sendData(`hello ${i}`);
            } catch (error) {
              errors.push((error as Error).message);
            }
            await new Promise((r) => setTimeout(r, 200));
          }
          const echoed = received[0] ?? "";
          await room.leave();
          return {
            early,
            echoed,
            notOpenYet: errors.every((m) => /^the data channel of dana_webcam is not open/.test(m)),
          };
        },
        { roomName: room("data") },
      );
      expect(result.early).toEqual({
        name: "RoomClientError",
        reason: "data-channel",
        message: "the data channel of dana_webcam is not open",
      });
      expect(result.echoed).toMatch(/^hello \d+$/);
      // Tries made while the channel was still opening (if any) failed the same way.
      expect(result.notOpenYet).toBe(true);
    });

  it("subscribeToStreams: false announces streams without receiving them until subscribe()", async () => {
    const name = room("manual");
    const [alice] = (await everyoneJoins(name, ["alice"])) as [Page];
    await waitUntil(alice, "alice to publish", async () => (await alice.textContent("#buttonPublish")) === "Unpublish");
    const viewer = await libraryPage();
    const result = await viewer.evaluate(
      async ({ roomName }) => {
        const lib = (window as unknown as { kurentoLib: typeof import("../../web/src/client/index.ts") }).kurentoLib;
        const kurento = new lib.KurentoRoom(`ws://${location.host}/room`);
        const room = kurento.Room({ room: roomName, user: "viewer", subscribeToStreams: false });
        const connected = await room.connect();
        const stream = connected.streams[0];
        if (!stream) throw new Error("no stream announced");
        await new Promise((r) => setTimeout(r, 1500));
        const before = { id: stream.getGlobalID(), status: stream.status, peer: stream.getWebRtcPeer() !== null };
        const video = document.createElement("video");
        document.body.append(video);
        video.muted = true;
        video.autoplay = true;
        const subscribed = room.next("stream-subscribed");
        await stream.subscribe();
        await subscribed;
        video.srcObject = stream.getWrStream();
        let frames = 0;
        // Bounded: 60 s.
        for (let i = 0; i < 300 && frames === 0; i++) {
          await new Promise((r) => setTimeout(r, 200));
          const stats = await stream.getWebRtcPeer()?.getStats();
          stats?.forEach((s: { type?: string; kind?: string; framesDecoded?: number }) => {
            if (s.type === "inbound-rtp" && s.kind === "video") frames = s.framesDecoded ?? 0;
          });
        }
        await room.leave();
        return { before, frames };
      },
      { roomName: name },
    );
    expect(result.before).toEqual({ id: "alice_webcam", status: "idle", peer: false });
    expect(result.frames).toBeGreaterThan(0);
  });
});
