/**
 * Starts the worker under `wrangler dev` (real workerd) as its own process
 * group, waits for `GET /health`, and stops the whole group (workerd
 * included) on `stop()`. Used by `npm start` and the integration tests.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface WranglerDevOptions {
  port?: number;
  /** Extra or overridden vars (`--var KEY:VALUE`). */
  vars?: Record<string, string>;
  /** Where Durable Object storage lives; a fresh temp dir when omitted. */
  persistTo?: string;
  /** Forward wrangler's output to this process's stdout/stderr. */
  inheritOutput?: boolean;
  readyTimeoutMs?: number;
}

export interface WranglerDev {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Without these, wrangler tries to reach the internet (metrics, update check). */
export const OFFLINE_ENV = {
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_HIDE_BANNER: "true",
} as const;

export async function startWranglerDev(options: WranglerDevOptions = {}): Promise<WranglerDev> {
  const port = options.port ?? (await freePort());
  const inspectorPort = await freePort();
  const tempDir = options.persistTo ? null : mkdtempSync(join(tmpdir(), "room-state-"));
  const persistTo = options.persistTo ?? (tempDir as string);
  const args = [
    "wrangler", "dev",
    "--ip", "127.0.0.1",
    "--port", String(port),
    "--inspector-port", String(inspectorPort),
    "--persist-to", persistTo,
    "--log-level", "warn",
  ];
  for (const [key, value] of Object.entries(options.vars ?? {})) args.push("--var", `${key}:${value}`);
  const child: ChildProcess = spawn("npx", args, {
    detached: true, // own process group: stop() ends workerd too
    stdio: options.inheritOutput ? ["ignore", "inherit", "inherit"] : ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...OFFLINE_ENV },
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8000)));
  child.stderr?.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8000)));
  const pid = child.pid;
  if (pid === undefined) throw new Error("wrangler dev did not start");
  let exited = false;
  // If this process ends without stop() (a crash, a test runner giving up),
  // take the detached group with it rather than leave workerd running.
  const killGroup = (): void => {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  process.once("exit", killGroup);
  child.once("exit", () => {
    exited = true;
    process.removeListener("exit", killGroup);
  });

  const stop = async (): Promise<void> => {
    if (!exited) {
      try {
        process.kill(-pid, "SIGTERM");
      } catch {
        // Already gone.
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          try {
            process.kill(-pid, "SIGKILL");
          } catch {
            // Already gone.
          }
          resolve();
        }, 5000);
        child.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 90_000);
  while (Date.now() < deadline) {
    if (exited) break;
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      if (response.ok) return { url, port, pid, stop };
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  throw new Error(`wrangler dev did not become healthy on ${url}:\n${output}`);
}
