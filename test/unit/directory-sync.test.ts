/**
 * The room's directory entry is kept in step with the room (README "Restarts
 * and storage"): failed calls are retried with backoff until they succeed,
 * calls never overlap, and the last state of the room wins. The directory
 * call is the seam (`DirectoryHost.call`), answered here by a script.
 */
import { describe, expect, it } from "vitest";
import { DirectorySync, type DirectoryHost } from "../../worker/do/directory-sync.ts";

interface Call {
  listed: boolean;
  resolve(): void;
  reject(error: Error): void;
}

function harness() {
  const calls: Call[] = [];
  const retries: number[] = [];
  const settled: boolean[] = [];
  const room = { seated: 0, listed: false };
  const host: DirectoryHost = {
    wanted: () => room.seated > 0,
    listed: () => room.listed,
    setListed: (listed) => {
      room.listed = listed;
    },
    call: (listed) =>
      new Promise<void>((resolve, reject) => {
        calls.push({ listed, resolve, reject });
      }),
    settled: (listed) => settled.push(listed),
    retryAt: (at) => retries.push(at),
    waitUntil: () => undefined,
    log: () => undefined,
  };
  return { sync: new DirectorySync(host), calls, retries, settled, room };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("DirectorySync", () => {
  it("retries a failed removal with growing delays until it succeeds, then lets the room delete its storage", async () => {
    const h = harness();
    h.room.listed = true;
    h.sync.sync();
    expect(h.calls.map((c) => c.listed)).toEqual([false]);
    for (let attempt = 0; attempt < 3; attempt++) {
      h.calls.at(-1)?.reject(new Error("directory restarting"));
      await tick();
      expect(h.retries).toHaveLength(attempt + 1);
      expect(h.sync.retryAt).toBe(h.retries.at(-1));
      // The alarm comes back to sync.
      h.sync.sync();
    }
    const delays = h.retries.map((at) => at - Date.now());
    // 1 s, 2 s, 4 s with equal jitter: each at least half its base.
    expect(delays[0]).toBeGreaterThan(400);
    expect(delays[2]).toBeGreaterThan(1900);
    expect(h.settled).toEqual([]);
    h.calls.at(-1)?.resolve();
    await tick();
    expect(h.room.listed).toBe(false);
    expect(h.settled).toEqual([false]);
    expect(h.sync.retryAt).toBeNull();
  });

  it("never runs two calls at once, and ends with the room's latest state (join, then leave while the add is in flight)", async () => {
    const h = harness();
    h.room.seated = 1;
    h.sync.sync();
    h.room.seated = 0;
    h.sync.sync();
    expect(h.calls).toHaveLength(1);
    h.calls[0]?.resolve();
    await tick();
    expect(h.calls.map((c) => c.listed)).toEqual([true, false]);
    h.calls[1]?.resolve();
    await tick();
    expect(h.room.listed).toBe(false);
    expect(h.settled).toEqual([false]);
  });

  it("sends nothing for a room already listed, and always sends a removal (an add whose answer was lost may have landed)", async () => {
    const h = harness();
    h.room.seated = 2;
    h.room.listed = true;
    h.sync.sync();
    expect(h.calls).toEqual([]);
    expect(h.settled).toEqual([true]);
    h.room.seated = 0;
    h.room.listed = false;
    h.sync.sync();
    expect(h.calls.map((c) => c.listed)).toEqual([false]);
  });
});
