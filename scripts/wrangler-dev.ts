/**
 * Starts the worker under `wrangler dev` (real workerd) as its own process
 * group, waits for `GET /health`, and stops the whole group (workerd
 * included) on `stop()`. Used by `npm start` and the integration tests.
 *
 * For fault-injection tests, `kill()` ends the group with SIGKILL (a crash:
 * no graceful shutdown, the Durable Object storage stays as the crash left
 * it) and `restart()` starts `wrangler dev` again on the same port, the same
 * storage and the same vars, as an operator's supervisor would.
 *
 * Options never appear on a command line: wrangler reads secrets and vars
 * from a `.dev.vars` file beside its configuration, so each run gets a
 * private directory (0700) holding a copy of wrangler.toml (paths made
 * absolute) and a `.dev.vars` (0600) with exactly the vars given. A
 * developer's own `.dev.vars` in the repository is therefore never read here.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export interface WranglerDevOptions {
  /** A fixed port; a free one (retried if another process takes it first) when omitted. */
  port?: number;
  /** Vars and secrets for the worker (written to a private `.dev.vars`; they override wrangler.toml's vars). */
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
  /** Where the Durable Object storage lives (the given `persistTo`, or a temporary directory). */
  readonly persistTo: string;
  /** Ends the group gracefully (SIGTERM, then SIGKILL after 5 s); deletes the private config and any temporary storage. */
  stop(): Promise<void>;
  /**
   * SIGKILLs the whole group (wrangler, workerd) as a crash would, and resolves once it is gone.
   * Keeps the storage and the private config; call `stop()` (or `restart()`) afterwards.
   */
  kill(): Promise<void>;
  /**
   * Ends this run (`signal`: SIGKILL by default, a crash; SIGTERM is a graceful stop) unless it
   * is gone already, then starts `wrangler dev` again on the same port with the same storage and
   * options. The new handle owns the storage from then on (a temporary one is deleted by its `stop()`).
   */
  restart(options?: { signal?: "SIGKILL" | "SIGTERM" }): Promise<WranglerDev>;
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

const REPO_ROOT = resolve(import.meta.dirname, "..");

/**
 * wrangler.toml with `main` and the assets directory made absolute, so the
 * copy works from any directory. When the web app has not been built (a test
 * that needs no pages), the assets come from an empty directory instead of
 * failing: such tests must not depend on another step having run.
 */
function relocatedConfig(emptyAssets: string): string {
  let text = readFileSync(join(REPO_ROOT, "wrangler.toml"), "utf8");
  for (const key of ["main", "directory"]) {
    const pattern = new RegExp(`^(${key}\\s*=\\s*)"([^"]+)"`, "m");
    const match = pattern.exec(text);
    if (!match) throw new Error(`wrangler.toml has no ${key} = "…" line to relocate`);
    let target = resolve(REPO_ROOT, match[2] as string);
    if (key === "directory" && !existsSync(target)) {
      mkdirSync(emptyAssets);
      target = emptyAssets;
    }
    text = text.replace(pattern, `$1${JSON.stringify(target)}`);
  }
  return text;
}

/** One dotenv line (exported for its unit test). Single quotes keep the value literal (dotenv expands nothing inside them). */
export function devVarLine(key: string, value: string): string {
  if (!/^[A-Z_][A-Z0-9_]*$/i.test(key)) throw new Error(`invalid worker option name: ${key}`);
  if (/[\r\n]/.test(value)) throw new Error(`worker option ${key} must be one line`);
  for (const quote of ["'", "`"]) if (!value.includes(quote)) return `${key}=${quote}${value}${quote}\n`;
  if (!/["\\]/.test(value)) return `${key}="${value}"\n`;
  throw new Error(`worker option ${key} mixes every quote character; dotenv cannot carry it`);
}

function devVars(vars: Record<string, string>): string {
  return Object.entries(vars)
    .map(([key, value]) => devVarLine(key, value))
    .join("");
}

const PORT_TAKEN = /EADDRINUSE|address already in use/i;

export async function startWranglerDev(options: WranglerDevOptions = {}): Promise<WranglerDev> {
  // A port picked free can be taken by another process before wrangler binds
  // it; then wrangler exits and we try again with fresh ports.
  const attempts = options.port === undefined ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options, null);
    } catch (error) {
      if (attempt >= attempts || !(error instanceof PortTakenError)) throw error;
    }
  }
}

class PortTakenError extends Error {}

/** A temporary storage directory a run owns (deleted by its `stop()`), handed on by `restart()`. */
interface OwnedState {
  readonly dir: string;
  handedOn: boolean;
}

/**
 * Starts again on `port` right after the previous run ended. A SIGKILLed
 * workerd's listening socket is closed by the kernel at once, but the port
 * can still be refused for a moment (or taken by another process): a few
 * tries, each after the previous one failed, bounded.
 */
async function startAgain(options: WranglerDevOptions, port: number, owned: OwnedState | null): Promise<WranglerDev> {
  const attempts = 5;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce({ ...options, port }, owned);
    } catch (error) {
      if (attempt >= attempts || !(error instanceof PortTakenError)) {
        if (owned) rmSync(owned.dir, { recursive: true, force: true });
        throw error;
      }
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
}

/**
 * A private copy of wrangler.toml (paths made absolute) in a fresh temp
 * directory with no `.dev.vars` or `.env` beside it, for tools that read
 * those files next to the configuration (the workers test project): a
 * developer's own secrets never reach a test. Removed when the process exits.
 */
export function isolatedWranglerConfig(): string {
  const dir = mkdtempSync(join(tmpdir(), "room-config-"));
  const path = join(dir, "wrangler.toml");
  writeFileSync(path, relocatedConfig(join(dir, "no-assets")));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return path;
}

async function startOnce(options: WranglerDevOptions, inherited: OwnedState | null): Promise<WranglerDev> {
  const port = options.port ?? (await freePort());
  const inspectorPort = await freePort();
  const configDir = mkdtempSync(join(tmpdir(), "room-worker-"));
  chmodSync(configDir, 0o700);
  const configPath = join(configDir, "wrangler.toml");
  writeFileSync(configPath, relocatedConfig(join(configDir, "no-assets")));
  writeFileSync(join(configDir, ".dev.vars"), devVars(options.vars ?? {}), { mode: 0o600 });
  // Without persistTo the storage is a temporary directory of its own (not inside the config
  // directory), so a restart can hand it to the next run.
  const owned: OwnedState | null = options.persistTo
    ? null
    : { dir: inherited?.dir ?? mkdtempSync(join(tmpdir(), "room-state-")), handedOn: false };
  const persistTo = owned ? owned.dir : resolve(options.persistTo as string);
  const args = [
    "wrangler",
    "dev",
    "--config",
    configPath,
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--inspector-port",
    String(inspectorPort),
    "--persist-to",
    persistTo,
    "--log-level",
    "warn",
  ];
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

  const exitedPromise = new Promise<void>((resolve) => {
    if (exited) resolve();
    else child.once("exit", () => resolve());
  });

  const signalGroup = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-pid, signal);
    } catch {
      // Already gone.
    }
  };

  /** Resolves once no process of the group is left (bounded: a zombie nobody reaps must not hang a test). */
  const groupGone = async (): Promise<void> => {
    await exitedPromise;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      try {
        process.kill(-pid, 0);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const removeFiles = (): void => {
    rmSync(configDir, { recursive: true, force: true });
    if (owned && !owned.handedOn) rmSync(owned.dir, { recursive: true, force: true });
  };

  const end = async (signal: "SIGKILL" | "SIGTERM"): Promise<void> => {
    if (exited) return groupGone();
    signalGroup(signal);
    if (signal === "SIGTERM") {
      const timer = setTimeout(() => signalGroup("SIGKILL"), 5000);
      await exitedPromise;
      clearTimeout(timer);
    }
    await groupGone();
  };

  const stop = async (): Promise<void> => {
    await end("SIGTERM");
    removeFiles();
  };

  const kill = (): Promise<void> => end("SIGKILL");

  const restart = async (restartOptions: { signal?: "SIGKILL" | "SIGTERM" } = {}): Promise<WranglerDev> => {
    await end(restartOptions.signal ?? "SIGKILL");
    if (owned) owned.handedOn = true;
    rmSync(configDir, { recursive: true, force: true });
    return startAgain(options, port, owned);
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 90_000);
  while (Date.now() < deadline) {
    if (exited) break;
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      if (response.ok) return { url, port, pid, persistTo, stop, kill, restart };
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  // A restart that failed keeps the storage it was handed (the caller may try again, or deletes it).
  if (owned && inherited) owned.handedOn = true;
  await stop();
  if (exited && PORT_TAKEN.test(output))
    throw new PortTakenError(`port ${port} or ${inspectorPort} was taken:\n${output}`);
  throw new Error(`wrangler dev did not become healthy on ${url}:\n${output}`);
}
