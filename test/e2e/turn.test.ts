/**
 * TURN in the browser (README "ICE servers and TURN"): the whole stack with
 * TURN_URLS / TURN_SECRET pointing at a real coturn on 127.0.0.1
 * (scripts/turn.ts), and Chromium pages of the demo. A user who opens the
 * demo with `?relay=1` (`iceTransportPolicy: "relay"`: only TURN relay
 * candidates) publishes through coturn and is seen by a user without it;
 * getStats shows the relay user's selected candidate pair is a relay one.
 * With a worker whose TURN_SECRET is not coturn's, coturn refuses the
 * relay user's allocations (401), her peer connections gather no candidate
 * and never connect, while a user without relay is unaffected. (The demo
 * shows no error for this yet: Chromium leaves ICE in "new" when it has no
 * candidate, so the client library never sees "failed".)
 */
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DemoApp } from "../../web/src/demo/app.ts";
import { startTurn, type TurnHandle } from "../../scripts/turn.ts";
import { joinRoom, remoteFrames, screenshot, waitForRemoteVideo, waitUntil } from "./helpers/demo.ts";
import { demoSuite } from "./helpers/suite.ts";

/** Bound on a page reacting to something: generous, for a busy machine. */
const WAIT_MS = 60_000;

let turn: TurnHandle | undefined;
/** Filled in once coturn runs, before the suites below start their stacks (their beforeAll runs after this one). */
const goodVars: Record<string, string> = {};
const wrongVars: Record<string, string> = {};

beforeAll(async () => {
  turn = await startTurn();
  console.log(`coturn answered STUN ${turn.startMs} ms after it was started`);
  Object.assign(goodVars, { TURN_URLS: turn.url, TURN_SECRET: turn.secret });
  Object.assign(wrongVars, { TURN_URLS: turn.url, TURN_SECRET: `not-${turn.secret}` });
});

// Registered first, so it runs last: the suites' stacks stop before coturn does.
afterAll(async () => {
  await turn?.stop();
});

function coturn(): TurnHandle {
  if (!turn) throw new Error("coturn is not started");
  return turn;
}

interface PairSeen {
  readonly stream: string;
  readonly local: string;
  readonly remote: string;
}

/** For each of the page's streams, the candidate types of its peer connection's selected pair (from getStats). */
async function selectedPairs(page: Page): Promise<PairSeen[]> {
  return page.evaluate(async () => {
    const app = (window as unknown as { kurentoDemo: DemoApp }).kurentoDemo;
    const out: PairSeen[] = [];
    for (const stream of app.room?.getStreams() ?? []) {
      const pc = stream.getWebRtcPeer();
      if (!pc) continue;
      type Report = {
        id: string;
        type: string;
        selectedCandidatePairId?: string;
        localCandidateId?: string;
        remoteCandidateId?: string;
        candidateType?: string;
      };
      const reports = new Map<string, Report>();
      (await pc.getStats()).forEach((report: Report) => {
        reports.set(report.id, report);
      });
      const transport = [...reports.values()].find((r) => r.type === "transport" && r.selectedCandidatePairId);
      const pair = transport?.selectedCandidatePairId ? reports.get(transport.selectedCandidatePairId) : undefined;
      out.push({
        stream: stream.getGlobalID(),
        local: (pair?.localCandidateId && reports.get(pair.localCandidateId)?.candidateType) || "",
        remote: (pair?.remoteCandidateId && reports.get(pair.remoteCandidateId)?.candidateType) || "",
      });
    }
    return out;
  });
}

interface PeerState {
  readonly stream: string;
  readonly ice: string;
  readonly gathering: string;
  readonly localCandidates: number;
}

/** Each stream's peer connection: ICE connection and gathering states, local candidates in getStats. */
async function peerStates(page: Page): Promise<PeerState[]> {
  return page.evaluate(async () => {
    const app = (window as unknown as { kurentoDemo: DemoApp }).kurentoDemo;
    const out: PeerState[] = [];
    for (const stream of app.room?.getStreams() ?? []) {
      const pc = stream.getWebRtcPeer();
      if (!pc) continue;
      let localCandidates = 0;
      (await pc.getStats()).forEach((report: { type?: string }) => {
        if (report.type === "local-candidate") localCandidates += 1;
      });
      out.push({
        stream: stream.getGlobalID(),
        ice: pc.iceConnectionState,
        gathering: pc.iceGatheringState,
        localCandidates,
      });
    }
    return out;
  });
}

/** What the page shows its user about media: the media banner, the tiles' state lines. */
async function mediaShown(page: Page): Promise<{ banner: string; tiles: Record<string, string> }> {
  return page.evaluate(() => {
    const banner = document.getElementById("mediaBanner");
    const tiles: Record<string, string> = {};
    for (const tile of Array.from(document.querySelectorAll<HTMLElement>("#participants .thumb"))) {
      tiles[tile.dataset.stream ?? ""] = tile.querySelector(".thumb-state")?.textContent ?? "";
    }
    return {
      banner: banner && !banner.hidden ? (document.getElementById("mediaErrorText")?.textContent ?? "") : "",
      tiles,
    };
  });
}

describe("TURN_SECRET shared with coturn", () => {
  const suite = demoSuite(goodVars);

  it("a user forced to relay (?relay=1) publishes through coturn and is seen by another user; its selected pairs are relay", async () => {
    const name = suite.room("turn");
    const relay = await suite.page(`${suite.stack.url}/?relay=1`);
    const started = Date.now();
    await joinRoom(relay, "ann", name);
    const viewer = await suite.page();
    await joinRoom(viewer, "bob", name);

    // bob decodes ann's camera, which reached the media server through coturn; ann decodes bob's through coturn too.
    await waitForRemoteVideo(viewer, ["ann_webcam"], WAIT_MS);
    console.log(`first frame of the relayed camera decoded ${Date.now() - started} ms after ann pressed Join`);
    await waitForRemoteVideo(relay, ["bob_webcam"], WAIT_MS);

    const pairs = await selectedPairs(relay);
    expect(pairs.map((pair) => pair.stream).sort()).toEqual(["ann_webcam", "bob_webcam"]);
    for (const pair of pairs) expect(pair, pair.stream).toMatchObject({ local: "relay" });
    // bob's own peer connections are not restricted: his publish is not relayed.
    const viewerPairs = await selectedPairs(viewer);
    expect(viewerPairs.find((pair) => pair.stream === "bob_webcam")?.local).toBe("host");

    // coturn allocated for the user name the worker put in ann's credentials, "<expiry>:ann".
    expect(coturn().log()).toMatch(/user <\d+:ann>: incoming packet ALLOCATE processed, success/);
    await screenshot(viewer, "turn-viewer-sees-relayed-user");
  });
});

describe("a worker whose TURN_SECRET is not coturn's", () => {
  const suite = demoSuite(wrongVars);

  it("the relay-only user's media never connects and the page says why: coturn answers 401, no candidate is gathered; a user without relay is unaffected", async () => {
    const name = suite.room("turn-wrong");
    const relay = await suite.page(`${suite.stack.url}/?relay=1`);
    await joinRoom(relay, "carol", name);
    const viewer = await suite.page();
    await joinRoom(viewer, "dave", name);

    // dave's own camera reaches the media server directly.
    await waitUntil(
      viewer,
      "dave's publish to connect",
      async () =>
        (await peerStates(viewer)).some((p) => p.stream === "dave_webcam" && /connected|completed/.test(p.ice)),
      WAIT_MS,
    );
    // carol's two peer connections (her publish, her subscription to dave) finish gathering with nothing to offer.
    await waitUntil(
      relay,
      "carol's peer connections to finish gathering",
      async () => {
        const states = await peerStates(relay);
        return states.length === 2 && states.every((p) => p.gathering === "complete");
      },
      WAIT_MS,
    );
    expect(coturn().log()).toMatch(/user <\d+:carol>: incoming packet message processed, error 401/);
    for (const state of await peerStates(relay)) {
      expect(state, state.stream).toMatchObject({ localCandidates: 0, ice: "new" });
    }
    expect((await remoteFrames(viewer)).find((s) => s.id === "carol_webcam")?.framesDecoded ?? 0).toBe(0);
    expect((await remoteFrames(relay)).find((s) => s.id === "dave_webcam")?.framesDecoded ?? 0).toBe(0);
    // And carol is told why, instead of a video that silently never starts.
    await waitUntil(relay, "carol's media error banner", async () => (await mediaShown(relay)).banner !== "", WAIT_MS);
    expect((await mediaShown(relay)).banner).toMatch(
      /^No relay candidate for (carol|dave)_webcam: the TURN server refused this client or cannot be reached/,
    );
    await screenshot(relay, "turn-wrong-secret");
  });
});
