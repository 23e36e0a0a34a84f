/**
 * The bridge's two state machines, as pure transition functions: a
 * ReconnectingSocket's link state (bridge/link-state.ts) and the connection
 * to one KMS (bridge/media/kurento-connection-state.ts).
 */
import { describe, expect, it } from "vitest";
import {
  initialLinkState,
  type LinkEvent,
  type LinkState,
  STABLE_AFTER_MS,
  transition as link,
} from "../../bridge/link-state.ts";
import {
  hasBeenUp,
  INITIAL_KMS_STATE,
  type KmsConnectionEvent,
  type KmsConnectionState,
  publicState,
  transition as kms,
} from "../../bridge/media/kurento-connection-state.ts";

type Socket = { readonly id: number };

function runLink(events: Array<LinkEvent<Socket>>, from: LinkState<Socket> = initialLinkState()): LinkState<Socket> {
  return events.reduce((state, event) => link(state, event), from);
}

function runKms(events: KmsConnectionEvent[], from: KmsConnectionState = INITIAL_KMS_STATE): KmsConnectionState {
  return events.reduce((state, event) => kms(state, event), from);
}

describe("link state (ReconnectingSocket)", () => {
  const a: Socket = { id: 1 };
  const b: Socket = { id: 2 };

  it("dials, opens and waits with a growing backoff step after each failed attempt", () => {
    const preparing = runLink([{ type: "start" }]);
    expect(preparing).toEqual({ kind: "preparing", retries: 0 });
    expect(link(preparing, { type: "dial", socket: a })).toEqual({ kind: "connecting", retries: 0, socket: a });

    const failedOnce = runLink(
      [
        { type: "dial", socket: a },
        { type: "closed", at: 1, reconnect: true },
      ],
      preparing,
    );
    expect(failedOnce).toEqual({ kind: "backoff", retries: 1, step: 0 });
    const failedTwice = runLink(
      [{ type: "retry" }, { type: "dial", socket: b }, { type: "closed", at: 2, reconnect: true }],
      failedOnce,
    );
    expect(failedTwice).toEqual({ kind: "backoff", retries: 2, step: 1 });
    // A failure to prepare the headers backs off the same way.
    expect(runLink([{ type: "retry" }, { type: "prepareFailed" }], failedTwice)).toEqual({
      kind: "backoff",
      retries: 3,
      step: 2,
    });

    const open = runLink([{ type: "retry" }, { type: "dial", socket: a }, { type: "opened", at: 100 }], failedTwice);
    expect(open).toEqual({ kind: "open", retries: 2, socket: a, openedAt: 100 });
  });

  it("resets the backoff only after a connection that lasted, not after one that flapped", () => {
    const open = runLink([{ type: "start" }, { type: "dial", socket: a }, { type: "opened", at: 1000 }], {
      kind: "idle",
      retries: 4,
    });
    expect(link(open, { type: "closed", at: 1000 + STABLE_AFTER_MS + 1, reconnect: true })).toEqual({
      kind: "backoff",
      retries: 1,
      step: 0,
    });
    expect(link(open, { type: "closed", at: 1000 + STABLE_AFTER_MS - 1, reconnect: true })).toEqual({
      kind: "backoff",
      retries: 5,
      step: 4,
    });
  });

  it("goes idle when a close must not reconnect; retry from idle dials again", () => {
    const open = runLink([{ type: "start" }, { type: "dial", socket: a }, { type: "opened", at: 0 }]);
    const idle = link(open, { type: "closed", at: 1, reconnect: false });
    expect(idle).toEqual({ kind: "idle", retries: 0 });
    expect(link(idle, { type: "retry" })).toEqual({ kind: "preparing", retries: 0 });
  });

  it("ignores events that do not apply: a second start, a retry while connecting, an open without a socket", () => {
    const preparing = runLink([{ type: "start" }]);
    expect(link(preparing, { type: "start" })).toBe(preparing);
    expect(link(preparing, { type: "retry" })).toBe(preparing);
    expect(link(preparing, { type: "opened", at: 0 })).toBe(preparing);
    expect(link(preparing, { type: "closed", at: 0, reconnect: true })).toBe(preparing);
    const connecting = link(preparing, { type: "dial", socket: a });
    expect(link(connecting, { type: "retry" })).toBe(connecting);
    expect(link(connecting, { type: "dial", socket: b })).toBe(connecting);
    const backoff = link(connecting, { type: "closed", at: 0, reconnect: true });
    expect(link(backoff, { type: "start" })).toBe(backoff);
    expect(link(backoff, { type: "closed", at: 0, reconnect: true })).toBe(backoff);
  });

  it("stop is final from every state", () => {
    const states: Array<LinkState<Socket>> = [
      initialLinkState(),
      { kind: "preparing", retries: 1 },
      { kind: "connecting", retries: 1, socket: a },
      { kind: "open", retries: 1, socket: a, openedAt: 0 },
      { kind: "backoff", retries: 2, step: 1 },
    ];
    const events: Array<LinkEvent<Socket>> = [
      { type: "start" },
      { type: "retry" },
      { type: "prepareFailed" },
      { type: "dial", socket: b },
      { type: "opened", at: 1 },
      { type: "closed", at: 1, reconnect: true },
      { type: "stop" },
    ];
    for (const state of states) {
      const stopped = link(state, { type: "stop" });
      expect(stopped.kind).toBe("stopped");
      for (const event of events) expect(link(stopped, event)).toBe(stopped);
    }
  });
});

describe("KMS connection state", () => {
  it("first connection: connecting → starting (still 'connecting' outside) → connected", () => {
    expect(publicState(INITIAL_KMS_STATE)).toBe("connecting");
    expect(hasBeenUp(INITIAL_KMS_STATE)).toBe(false);
    const starting = kms(INITIAL_KMS_STATE, { type: "socketUp" });
    expect(starting).toEqual({ kind: "starting", first: true });
    expect(publicState(starting)).toBe("connecting");
    expect(hasBeenUp(starting)).toBe(true);
    const connected = kms(starting, { type: "ready" });
    expect(connected).toEqual({ kind: "connected" });
    expect(publicState(connected)).toBe("connected");
  });

  it("a drop: down, lost after the timeout (once), resumed through sessionUp only", () => {
    const down = runKms([{ type: "socketUp" }, { type: "ready" }, { type: "socketDown" }]);
    expect(down).toEqual({ kind: "down", lost: false });
    expect(publicState(down)).toBe("disconnected");
    // A new socket alone does not make it usable: the session must be resumed first.
    expect(kms(down, { type: "socketUp" })).toBe(down);
    expect(kms(down, { type: "ready" })).toBe(down);
    const lost = kms(down, { type: "lostTimeout" });
    expect(lost).toEqual({ kind: "down", lost: true });
    expect(kms(lost, { type: "lostTimeout" })).toBe(lost);
    for (const sameSession of [true, false]) {
      const resuming = kms(lost, { type: "sessionUp", sameSession });
      expect(resuming).toEqual({ kind: "starting", first: false });
      expect(publicState(resuming)).toBe("disconnected");
      expect(kms(resuming, { type: "ready" })).toEqual({ kind: "connected" });
    }
  });

  it("ignores a socket drop outside 'connected' and a lost timeout outside 'down'", () => {
    const connecting = INITIAL_KMS_STATE;
    expect(kms(connecting, { type: "socketDown" })).toBe(connecting);
    expect(kms(connecting, { type: "lostTimeout" })).toBe(connecting);
    const starting = kms(connecting, { type: "socketUp" });
    expect(kms(starting, { type: "socketDown" })).toBe(starting);
    const connected = kms(starting, { type: "ready" });
    expect(kms(connected, { type: "lostTimeout" })).toBe(connected);
    expect(kms(connected, { type: "socketUp" })).toBe(connected);
  });

  it("close is final from every state", () => {
    const states: KmsConnectionState[] = [
      INITIAL_KMS_STATE,
      { kind: "starting", first: true },
      { kind: "starting", first: false },
      { kind: "connected" },
      { kind: "down", lost: false },
      { kind: "down", lost: true },
    ];
    const events: KmsConnectionEvent[] = [
      { type: "socketUp" },
      { type: "sessionUp", sameSession: true },
      { type: "ready" },
      { type: "socketDown" },
      { type: "lostTimeout" },
      { type: "close" },
    ];
    for (const state of states) {
      const closed = kms(state, { type: "close" });
      expect(closed).toEqual({ kind: "closed" });
      expect(publicState(closed)).toBe("closed");
      for (const event of events) expect(kms(closed, event)).toBe(closed);
    }
  });
});
