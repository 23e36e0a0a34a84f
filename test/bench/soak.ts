/**
 * The churn soak (not a timed test): the whole system (embedded media
 * server, worker under `wrangler dev`, bridge) and SOAK_CLIENTS simulated
 * clients that join, publish, subscribe, chat, unpublish, leave and drop at
 * random across a few rooms for SOAK_SECONDS (test/soak/churn.ts). Prints the
 * counts, the errors by method and code, the media objects left, the roster
 * check and the worker's memory, and exits 1 when an invariant fails.
 *
 *   npm run soak                       # 180 s, 16 clients, a random seed (printed)
 *   SOAK_SECONDS=600 SOAK_CLIENTS=24 SOAK_SEED=12345 npm run soak
 *
 * Bounded: at most 24 clients, 8 publishers at a time, 127.0.0.1 only; stops
 * everything it started on every exit path.
 */
import { startSystem, type System } from "../../scripts/system.ts";
import { runChurn, OPERATIONS, type ChurnReport } from "../soak/churn.ts";
import { megabytes } from "../soak/memory.ts";
import { randomSeed } from "../soak/rng.ts";
import { HEAP_GROWTH_BOUND_MB, MEMORY_GROWTH_BOUND_MB, SOAK_RECONNECT_WINDOW_SECONDS } from "../soak/settings.ts";

function envInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    process.stderr.write(`${name} must be an integer in ${min}…${max}, not '${raw}'\n`);
    process.exit(2);
  }
  return value;
}

const seconds = envInt("SOAK_SECONDS", 180, 10, 3600);
const clients = envInt("SOAK_CLIENTS", 16, 1, 24);
const rooms = envInt("SOAK_ROOMS", 3, 1, 10);
const seed = envInt("SOAK_SEED", randomSeed(), 0, 0x7fffffff);
/** 0: signalling only (no media), to tell the worker's memory per connection from the media path's. */
const publishers = envInt("SOAK_PUBLISHERS", 8, 0, 8);

function print(report: ChurnReport, growthMb: number): void {
  const out = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  out("");
  out(`seed ${report.seed} (repeat with SOAK_SEED=${report.seed}), ${report.clients} clients, ${report.rooms} rooms`);
  out("operations:");
  for (const op of OPERATIONS) out(`  ${op.padEnd(28)} ${report.counts[op]}`);
  const raceKeys = Object.keys(report.raceErrors).sort();
  out(`race errors (defined by the protocol, counted): ${raceKeys.length === 0 ? "none" : ""}`);
  for (const key of raceKeys) out(`  ${key.padEnd(28)} ${report.raceErrors[key]}`);
  const unexpectedKeys = Object.keys(report.unexpectedErrors).sort();
  out(`unexpected errors: ${unexpectedKeys.length === 0 ? "none" : ""}`);
  for (const key of unexpectedKeys) out(`  ${key.padEnd(28)} ${report.unexpectedErrors[key]}`);
  for (const kind of ["publish", "subscribe"] as const) {
    const l = report.latencyMs[kind];
    out(`${kind} round trip (ms): n=${l.count} p50=${l.p50} p95=${l.p95} max=${l.max}`);
  }
  out(`media objects left: ${report.mediaObjectsLeft}`);
  out(`rooms left open: ${report.roomsLeft.length === 0 ? "none" : report.roomsLeft.join(", ")}`);
  out(
    `rosters: ${report.rosters.agreed ? "agree" : "DISAGREE"} (${report.rosters.clientsChecked} clients, ${report.rosters.probesChecked} probes)`,
  );
  const m = report.memory;
  out("workerd RSS (MB):");
  out(`  start                        ${megabytes(m.start.workerdBytes)}`);
  out(`  after warm-up                ${megabytes(m.afterWarmup.workerdBytes)}`);
  out(`  end of churn                 ${megabytes(m.endOfChurn.workerdBytes)}`);
  out(`  after everyone left          ${megabytes(m.afterLeave.workerdBytes)}`);
  out(`  growth after warm-up         ${growthMb} (bound ${MEMORY_GROWTH_BOUND_MB})`);
  out(
    `  samples (s:MB)               ${m.samples.map((s) => `${Math.round(s.atMs / 1000)}:${megabytes(s.memory.workerdBytes)}`).join(" ")}`,
  );
  out(`  whole wrangler group at end  ${megabytes(m.afterLeave.groupBytes)}`);
  const heap = (bytes: number | null): string => (bytes === null ? "n/a" : String(megabytes(bytes)));
  const h = m.heapAfterGc;
  out("worker isolate JS heap after a forced GC (MB):");
  out(
    `  start ${heap(h.start)}, after warm-up ${heap(h.afterWarmup)}, end of churn ${heap(h.endOfChurn)}, after everyone left ${heap(h.afterLeave)}`,
  );
  if (report.failures.length > 0) {
    out("FAILURES:");
    for (const failure of report.failures) out(`  ${failure}`);
  }
}

let system: System | undefined;
let exitCode = 1;
const stopOnSignal = (): void => {
  void (system?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
};
process.once("SIGINT", stopOnSignal);
process.once("SIGTERM", stopOnSignal);
try {
  process.stdout.write(`soak: seed ${seed}, ${seconds} s, ${clients} clients, ${rooms} rooms; starting the system…\n`);
  system = await startSystem({
    mediaServerWebrtc: { loopbackOnly: true },
    vars: { RECONNECT_WINDOW_SECONDS: String(SOAK_RECONNECT_WINDOW_SECONDS) },
  });
  const report = await runChurn({
    system,
    seed,
    durationMs: seconds * 1000,
    clients,
    rooms,
    maxPublishers: publishers,
    reconnectWindowMs: SOAK_RECONNECT_WINDOW_SECONDS * 1000,
    log: (line) => process.stdout.write(`${line}\n`),
  });
  const growthMb = megabytes(report.memory.endOfChurn.workerdBytes - report.memory.afterWarmup.workerdBytes);
  print(report, growthMb);
  const { afterWarmup, endOfChurn } = report.memory.heapAfterGc;
  const heapGrowthMb = afterWarmup === null || endOfChurn === null ? null : megabytes(endOfChurn - afterWarmup);
  process.stdout.write(`  heap growth after warm-up      ${heapGrowthMb ?? "n/a"} (bound ${HEAP_GROWTH_BOUND_MB})\n`);
  const memoryOk = growthMb < MEMORY_GROWTH_BOUND_MB && heapGrowthMb !== null && heapGrowthMb < HEAP_GROWTH_BOUND_MB;
  if (!memoryOk)
    process.stdout.write(
      `FAILED: workerd RSS grew ${growthMb} MB, its JS heap ${heapGrowthMb ?? "n/a"} MB after warm-up\n`,
    );
  exitCode = report.ok && memoryOk ? 0 : 1;
  process.stdout.write(exitCode === 0 ? "soak: every invariant held\n" : "soak: FAILED\n");
} catch (error) {
  process.stderr.write(`soak: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
} finally {
  await system?.stop();
}
process.exit(exitCode);
