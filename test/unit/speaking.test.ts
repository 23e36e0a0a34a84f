/**
 * The speaking detector, the active-speaker choice and the monitor that ties
 * them to level sources, fed with fake levels (no WebAudio, no timers).
 */
import { describe, expect, it } from "vitest";
import {
  ActiveSpeakerSelector,
  type LevelSource,
  SpeakerMonitor,
  SpeakingDetector,
  type SpeakingChange,
} from "../../web/src/client/speaking.ts";
import { rms } from "../../web/src/client/audio-levels.ts";

const LOUD = 0.2;
const QUIET = 0.001;

function feed(detector: SpeakingDetector, levels: readonly number[]): SpeakingChange[] {
  return levels.map((level) => detector.update(level));
}

describe("SpeakingDetector", () => {
  it("speaks after two consecutive loud windows, not after one", () => {
    const d = new SpeakingDetector();
    expect(feed(d, [LOUD, QUIET, LOUD, QUIET])).toEqual([null, null, null, null]);
    expect(d.speaking).toBe(false);
    expect(feed(d, [LOUD, LOUD])).toEqual([null, "started"]);
    expect(d.speaking).toBe(true);
    expect(d.level).toBe(LOUD);
  });

  it("stays speaking through pauses under 500 ms and goes silent after 500 ms of quiet", () => {
    const d = new SpeakingDetector();
    feed(d, [LOUD, LOUD]);
    // Four quiet windows (400 ms), then a word: still speaking.
    expect(feed(d, [QUIET, QUIET, QUIET, QUIET, LOUD])).toEqual([null, null, null, null, null]);
    expect(d.speaking).toBe(true);
    expect(feed(d, [QUIET, QUIET, QUIET, QUIET])).toEqual([null, null, null, null]);
    expect(d.update(QUIET)).toBe("stopped");
    expect(d.speaking).toBe(false);
    expect(d.update(QUIET)).toBeNull();
  });

  it("honours its settings: threshold, windows, silence", () => {
    const d = new SpeakingDetector({ threshold: 0.5, speakAfterWindows: 3, silentAfterMs: 200, windowMs: 100 });
    expect(feed(d, [0.4, 0.4, 0.4])).toEqual([null, null, null]);
    expect(feed(d, [0.6, 0.6, 0.6])).toEqual([null, null, "started"]);
    expect(feed(d, [0.1, 0.1])).toEqual([null, "stopped"]);
  });

  it("treats a non-finite level as silence, and reset says whether it was speaking", () => {
    const d = new SpeakingDetector();
    feed(d, [Number.NaN, Number.POSITIVE_INFINITY]);
    expect(d.speaking).toBe(false);
    feed(d, [LOUD, LOUD]);
    expect(d.reset()).toBe("stopped");
    expect(d.reset()).toBeNull();
  });
});

describe("ActiveSpeakerSelector", () => {
  it("picks the loudest speaker, at once after silence", () => {
    const s = new ActiveSpeakerSelector<string>(500);
    expect(s.update([], 0)).toBeUndefined();
    expect(
      s.update(
        [
          ["a", 0.1],
          ["b", 0.3],
        ],
        100,
      ),
    ).toBe("b");
    expect(s.current).toBe("b");
    expect(s.update([["b", 0.3]], 200)).toBeUndefined();
  });

  it("changes at most once per hold, so overlapping voices do not flicker", () => {
    const s = new ActiveSpeakerSelector<string>(500);
    s.update([["a", 0.2]], 0);
    const both = (a: number, b: number): [string, number][] => [
      ["a", a],
      ["b", b],
    ];
    // b louder 100 ms later: held until 500 ms after the last change.
    expect(s.update(both(0.2, 0.3), 100)).toBeUndefined();
    expect(s.update(both(0.2, 0.3), 400)).toBeUndefined();
    expect(s.update(both(0.2, 0.3), 500)).toBe("b");
    // Alternating loudness every window gives at most two changes a second.
    const changes: Array<string | null> = [];
    for (let t = 600; t < 2600; t += 100) {
      const change = s.update(t % 200 === 0 ? both(0.3, 0.2) : both(0.2, 0.3), t);
      if (change !== undefined) changes.push(change);
    }
    expect(changes.length).toBeLessThanOrEqual(4);
  });

  it("goes to null when nobody speaks (after the hold), and at once when the speaker is removed", () => {
    const s = new ActiveSpeakerSelector<string>(500);
    s.update([["a", 0.2]], 0);
    expect(s.update([], 300)).toBeUndefined();
    expect(s.update([], 500)).toBeNull();
    s.update([["a", 0.2]], 1000);
    expect(s.remove("b", 1100)).toBe(false);
    expect(s.remove("a", 1100)).toBe(true);
    expect(s.current).toBeNull();
  });
});

/** A level source whose next readings the test sets. */
class FakeSource implements LevelSource {
  value = 0;
  closed = false;
  level(): number {
    return this.value;
  }
  close(): void {
    this.closed = true;
  }
}

describe("SpeakerMonitor", () => {
  function monitor() {
    const events: string[] = [];
    const m = new SpeakerMonitor<string>({
      started: (key) => events.push(`${key} speaking`),
      stopped: (key) => events.push(`${key} stopped`),
      activeChanged: (key) => events.push(`active ${key}`),
    });
    return { m, events };
  }

  it("raises speaking, stopped and active-speaker changes from its sources", () => {
    const { m, events } = monitor();
    const alice = new FakeSource();
    const bob = new FakeSource();
    m.watch("alice", {}, alice, 0);
    m.watch("bob", {}, bob, 0);
    let now = 0;
    const tick = (times = 1) => {
      for (let i = 0; i < times; i++) {
        now += 100;
        m.tick(now);
      }
    };
    alice.value = LOUD;
    tick(2);
    expect(events).toEqual(["alice speaking", "active alice"]);
    expect(m.isSpeaking("alice")).toBe(true);
    expect(m.activeSpeaker).toBe("alice");
    alice.value = QUIET;
    bob.value = LOUD;
    tick(2);
    expect(events.slice(2)).toEqual(["bob speaking"]);
    tick(3);
    expect(events.slice(3)).toEqual(["alice stopped", "active bob"]);
    expect(m.level("bob")).toBe(LOUD);
  });

  it("unwatching a speaking active source stops it and clears the active speaker; new media replaces the source", () => {
    const { m, events } = monitor();
    const first = new FakeSource();
    const media = {};
    m.watch("alice", media, first, 0);
    first.value = LOUD;
    m.tick(100);
    m.tick(200);
    expect(m.isWatching("alice", media)).toBe(true);
    expect(m.isWatching("alice", {})).toBe(false);
    const second = new FakeSource();
    m.watch("alice", {}, second, 300);
    expect(first.closed).toBe(true);
    expect(events).toEqual(["alice speaking", "active alice", "alice stopped", "active null"]);
    m.unwatch("alice", 400);
    expect(second.closed).toBe(true);
    expect(m.keys()).toEqual([]);
  });
});

describe("rms", () => {
  it("is the root mean square of the samples, 0 for none", () => {
    expect(rms(new Float32Array([0.5, -0.5, 0.5, -0.5]))).toBeCloseTo(0.5);
    expect(rms(new Float32Array(0))).toBe(0);
  });
});
