/**
 * Pure parts of the client: the connection-state transition table, the
 * socket URL for a room, the thumbnail-width rule and the typed emitter.
 */
import { describe, expect, it, vi } from "vitest";
import { Emitter } from "../../web/src/client/emitter.ts";
import { roomSocketUrl } from "../../web/src/client/kurento-room.ts";
import { canSend, canTransition, CONNECTION_STATES, type ConnectionState } from "../../web/src/client/state.ts";
import { thumbnailWidthPercent } from "../../web/src/demo/layout.ts";

describe("connection state transitions", () => {
  const legal: Array<[ConnectionState, ConnectionState]> = [
    ["new", "connecting"],
    ["new", "closed"],
    ["connecting", "connected"],
    ["connecting", "leaving"],
    ["connecting", "closed"],
    ["connected", "reconnecting"],
    ["connected", "leaving"],
    ["connected", "closed"],
    ["reconnecting", "connected"],
    ["reconnecting", "leaving"],
    ["reconnecting", "closed"],
    ["leaving", "closed"],
  ];

  it("allows exactly the documented transitions", () => {
    const allowed: Array<[ConnectionState, ConnectionState]> = [];
    for (const from of CONNECTION_STATES)
      for (const to of CONNECTION_STATES) if (canTransition(from, to)) allowed.push([from, to]);
    expect(allowed).toEqual(legal);
  });

  it("closed is final and only a connected room sends requests", () => {
    for (const to of CONNECTION_STATES) expect(canTransition("closed", to)).toBe(false);
    expect(CONNECTION_STATES.filter(canSend)).toEqual(["connected"]);
  });
});

describe("roomSocketUrl", () => {
  it("appends the encoded room to a /room URL", () => {
    expect(roomSocketUrl("wss://example.org/room", "a b/c")).toBe("wss://example.org/room/a%20b%2Fc");
    expect(roomSocketUrl("ws://127.0.0.1:8787/room/", "demo")).toBe("ws://127.0.0.1:8787/room/demo");
  });

  it("keeps the URL as given for the legacy route or another path, and maps http(s) to ws(s)", () => {
    expect(roomSocketUrl("wss://example.org/room", "demo", true)).toBe("wss://example.org/room");
    expect(roomSocketUrl("https://example.org/custom/socket", "demo")).toBe("wss://example.org/custom/socket");
    expect(roomSocketUrl("http://127.0.0.1:1/room", "x")).toBe("ws://127.0.0.1:1/room/x");
  });
});

describe("thumbnail width (the seed's rule)", () => {
  it("is 14% up to 7 publishers, then 98% shared", () => {
    expect([1, 2, 7].map(thumbnailWidthPercent)).toEqual([14, 14, 14]);
    expect(thumbnailWidthPercent(8)).toBeCloseTo(12.25);
    expect(thumbnailWidthPercent(14)).toBe(7);
    expect(thumbnailWidthPercent(0)).toBe(14);
  });
});

describe("Emitter", () => {
  class Thing extends Emitter<{ ping: { n: number } }> {
    fire(n: number): void {
      this.emit("ping", { n });
    }
  }

  it("delivers to every listener even when one throws, supports once/off and next()", async () => {
    const thing = new Thing();
    const seen: number[] = [];
    const errorSpy = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      thing.on("ping", () => {
        throw new Error("listener bug");
      });
      thing.on("ping", ({ n }) => seen.push(n));
      thing.once("ping", ({ n }) => seen.push(n * 10));
      thing.fire(1);
      thing.fire(2);
      expect(errorSpy).toHaveBeenCalledTimes(2);
    } finally {
      errorSpy.mockRestore();
    }
    expect(seen).toEqual([1, 10, 2]);
    const next = thing.next("ping", { filter: (e) => e.n > 5 });
    thing.fire(3);
    thing.fire(7);
    await expect(next).resolves.toEqual({ n: 7 });
    await expect(thing.next("ping", { timeoutMs: 20 })).rejects.toThrow(/timed out/);
  });
});
