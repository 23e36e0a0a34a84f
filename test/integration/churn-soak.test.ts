/**
 * The churn soak, bounded for the suite: about 60 s of 12 simulated clients
 * joining, publishing, subscribing, chatting, unpublishing, leaving and
 * dropping their sockets (resuming within the reconnection window, or not)
 * at random across three rooms of the whole system (worker under wrangler
 * dev, bridge, embedded media server; werift peers with real SDP and trickle
 * ICE). The driver is test/soak/churn.ts; `npm run soak` runs it longer and
 * prints the numbers.
 *
 * Afterwards: every connected client's roster equals the room's membership
 * (and a probe's join result), no error outside the races the protocol
 * defines, 0 objects on the media server and no open room once everyone
 * left, workerd never restarted, and after the warm-up the worker
 * isolate's live JS heap grew less than HEAP_GROWTH_BOUND_MB and workerd's
 * RSS less than MEMORY_GROWTH_BOUND_MB (test/soak/settings.ts has the
 * measurements behind both).
 *
 * The seed is random per run and printed (and named in every failure);
 * SOAK_SEED=<n> repeats a run's decisions.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { startSystem, type System } from "../../scripts/system.ts";
import { runChurn } from "../soak/churn.ts";
import { megabytes } from "../soak/memory.ts";
import { randomSeed } from "../soak/rng.ts";
import { HEAP_GROWTH_BOUND_MB, MEMORY_GROWTH_BOUND_MB, SOAK_RECONNECT_WINDOW_SECONDS } from "../soak/settings.ts";

const CHURN_SECONDS = 60;
let system: System;

beforeAll(async () => {
  system = await startSystem({
    mediaServerWebrtc: { loopbackOnly: true },
    vars: { RECONNECT_WINDOW_SECONDS: String(SOAK_RECONNECT_WINDOW_SECONDS) },
  });
});

afterAll(async () => {
  await system?.stop();
});

// Bounds: 60 s of churn, then every wait of the final phase is bounded (requests in flight 60 s,
// rosters window + 30 s, leaves 60 s, media objects 65 s, rooms 30 s); 6 minutes covers the worst
// case on a loaded machine, a normal run takes about 80 s.
it("a minute of churn leaves no media object, no ghost seat, no disagreeing roster, no unexpected error, and flat worker memory", {
  timeout: 360_000,
}, async () => {
  const seed = process.env.SOAK_SEED ? Number(process.env.SOAK_SEED) : randomSeed();
  process.stdout.write(`churn soak: seed ${seed} (repeat with SOAK_SEED=${seed})\n`);
  const report = await runChurn({
    system,
    seed,
    durationMs: CHURN_SECONDS * 1000,
    clients: 12,
    rooms: 3,
    maxPublishers: 6,
    reconnectWindowMs: SOAK_RECONNECT_WINDOW_SECONDS * 1000,
  });
  const about = `seed ${seed}`;
  // One line for the log of a failing run; the full print is the bench's (npm run soak).
  const c = report.counts;
  const heap = report.memory.heapAfterGc;
  process.stdout.write(
    `churn soak: joins ${c.joins}, leaves ${c.leaves}, drops ${c.drops}, resumes ${c.resumes}, publishes ${c.publishes}, ` +
      `subscribes ${c.subscribes}, chats ${c.chats}; publish p95 ${report.latencyMs.publish.p95} ms; ` +
      `race errors ${JSON.stringify(report.raceErrors)}; workerd RSS ${megabytes(report.memory.afterWarmup.workerdBytes)} → ` +
      `${megabytes(report.memory.endOfChurn.workerdBytes)} MB, JS heap ${megabytes(heap.afterWarmup ?? 0)} → ${megabytes(heap.endOfChurn ?? 0)} MB\n`,
  );
  expect(report.failures, about).toEqual([]);
  expect(report.unexpectedErrors, about).toEqual({});
  expect(report.rosters.agreed, about).toBe(true);
  expect(report.rosters.probesChecked, about).toBeGreaterThanOrEqual(3);
  expect(report.mediaObjectsLeft, about).toBe(0);
  expect(report.roomsLeft, about).toEqual([]);

  // The churn really happened: every kind of operation, many times over.
  for (const op of ["joins", "leaves", "drops", "resumes", "abandons", "chats"] as const)
    expect(c[op], `${op} (${about})`).toBeGreaterThanOrEqual(5);
  for (const op of ["publishes", "subscribes"] as const) expect(c[op], `${op} (${about})`).toBeGreaterThanOrEqual(3);

  // Memory (bounds and the measurements behind them: test/soak/settings.ts): the live JS heap of
  // the worker isolate after a forced GC is what the room code keeps alive; RSS also holds
  // workerd's native memory, so its bound is loose and only catches a runaway.
  expect(heap.afterWarmup, `heap after warm-up read through the inspector (${about})`).not.toBeNull();
  expect(heap.endOfChurn, `heap at the end read through the inspector (${about})`).not.toBeNull();
  const heapGrowthMb = megabytes((heap.endOfChurn ?? 0) - (heap.afterWarmup ?? 0));
  expect(heapGrowthMb, `worker JS heap growth after warm-up, MB (${about})`).toBeLessThan(HEAP_GROWTH_BOUND_MB);
  const rssGrowthMb = megabytes(report.memory.endOfChurn.workerdBytes - report.memory.afterWarmup.workerdBytes);
  expect(rssGrowthMb, `workerd RSS growth after warm-up, MB (${about})`).toBeLessThan(MEMORY_GROWTH_BOUND_MB);
});
