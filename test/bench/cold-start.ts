/**
 * Cold-start benchmark (not a test): how long the first `joinRoom` into a
 * room that never existed takes, i.e. a new room Durable Object being
 * created, through the worker under `wrangler dev` (real workerd).
 *
 * Prints the very first join after wrangler started (the isolate is cold too),
 * then p50/p90/max over `--rooms` further new rooms (the isolate is warm, each
 * room object is new). Time = WebSocket upgrade request → joinRoom answer.
 *
 *   node test/bench/cold-start.ts [--rooms 20] [--runs 1]
 *
 * `--runs N` restarts wrangler N times (N cold-isolate samples). 127.0.0.1
 * only; stops everything it started on every exit path. When web/dist has
 * not been built, an empty assets directory stands in for it (the worker's
 * routes do not need the web app).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { spawn } from "node:child_process";
import { freePort, OFFLINE_ENV, startWranglerDev } from "../../scripts/wrangler-dev.ts";

const { values } = parseArgs({
  options: { rooms: { type: "string", default: "20" }, runs: { type: "string", default: "1" } },
});
const rooms = Math.min(200, Math.max(1, Number(values.rooms)));
const runs = Math.min(10, Math.max(1, Number(values.runs)));

/** Opens /room/<room>, sends joinRoom, resolves with the elapsed milliseconds. */
function timeJoin(base: string, room: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace("http", "ws")}/room/${room}`);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`joinRoom into ${room} timed out`));
    }, 30_000);
    ws.on("open", () =>
      ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "joinRoom", params: { user: "u", room } })),
    );
    ws.on("message", (data) => {
      const frame = JSON.parse(data.toString()) as { id?: number; error?: unknown };
      if (frame.id !== 1) return;
      clearTimeout(timer);
      const elapsed = performance.now() - started;
      ws.close();
      if (frame.error) reject(new Error(`joinRoom failed: ${JSON.stringify(frame.error)}`));
      else resolve(elapsed);
    });
    ws.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/**
 * scripts/wrangler-dev.ts's start, but wrangler refuses to start when the
 * configured assets directory (web/dist) is missing: then the same command
 * line with `--assets <empty dir>`.
 */
async function startDev(): Promise<{ url: string; stop(): Promise<void> }> {
  if (existsSync("web/dist")) return startWranglerDev();
  const assets = mkdtempSync(join(tmpdir(), "cold-start-assets-"));
  writeFileSync(join(assets, "index.html"), "<!doctype html>");
  const state = mkdtempSync(join(tmpdir(), "cold-start-state-"));
  const port = await freePort();
  const args = ["wrangler", "dev", "--ip", "127.0.0.1", "--port", String(port)];
  args.push("--inspector-port", String(await freePort()), "--persist-to", state, "--log-level", "warn");
  args.push("--assets", assets);
  const child = spawn("npx", args, { detached: true, stdio: "ignore", env: { ...process.env, ...OFFLINE_ENV } });
  const pid = child.pid as number;
  const kill = (): void => {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  process.once("exit", kill);
  const stop = async (): Promise<void> => {
    kill();
    await new Promise((r) => setTimeout(r, 300));
    rmSync(assets, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 90_000; Date.now() < deadline; ) {
    try {
      if ((await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) })).ok) return { url, stop };
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  throw new Error("wrangler dev did not become healthy");
}

async function main(): Promise<void> {
  const firsts: number[] = [];
  const startups: number[] = [];
  const warm: number[] = [];
  for (let run = 0; run < runs; run++) {
    const spawned = performance.now();
    const dev = await startDev();
    startups.push(performance.now() - spawned);
    try {
      const tag = `${Date.now().toString(36)}-${run}`;
      firsts.push(await timeJoin(dev.url, `cold-${tag}-first`));
      for (let i = 0; i < rooms; i++) warm.push(await timeJoin(dev.url, `cold-${tag}-${i}`));
    } finally {
      await dev.stop();
    }
  }
  warm.sort((a, b) => a - b);
  const ms = (n: number): string => `${n.toFixed(1)} ms`;
  console.log(`wrangler dev start → /health ok (bundling + workerd start): ${startups.map(ms).join(", ")}`);
  console.log(`first join after start (cold isolate + new room), ${runs} run(s): ${firsts.map(ms).join(", ")}`);
  console.log(
    `new room, warm isolate (n=${warm.length}): p50 ${ms(quantile(warm, 0.5))}, ` +
      `p90 ${ms(quantile(warm, 0.9))}, max ${ms(warm[warm.length - 1] ?? Number.NaN)}`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
