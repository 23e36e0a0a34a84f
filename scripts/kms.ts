/**
 * A real Kurento Media Server for `npm start` and the tests: started from a
 * KMS install (`KMS_HOME`, a folder with KMS's `run.sh`, which ends with
 * `exec`, so the child's PID is the server's) on a free 127.0.0.1 port, in
 * its own process group, and ready once its WebSocket accepts a connection.
 *
 * The install is never written to. It is run from a private copy under the
 * temporary directory (made once per install and variant, then reused) so
 * that:
 * - a copy of the install whose shared-library symlinks were flattened into
 *   small text files naming their target (what a copy without symlink support
 *   leaves; the loader then fails with "file too short") runs anyway: the
 *   copy has the links again;
 * - tests can restrict ICE to the loopback interface (`loopbackOnly`), as the
 *   embedded media server's `loopbackOnly` does, so media stays on 127.0.0.1.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  cpSync,
  existsSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type WebSocketType from "ws";

// vitest resolves `import "ws"` to ws's browser build (which only throws); load the Node build.
const WebSocket = createRequire(import.meta.url)("ws") as typeof WebSocketType;

export interface KmsOptions {
  /** The KMS install (a folder with `run.sh`); default `KMS_HOME`. */
  home?: string;
  /** A port to bind (a restart on the same port); a free one when omitted. */
  port?: number;
  /** ICE on the loopback interface only (tests: every media packet stays on 127.0.0.1). */
  loopbackOnly?: boolean;
  /** Where KMS's output goes; a new file in the temporary directory when omitted. */
  logFile?: string;
  /** GStreamer log levels (`GST_DEBUG`); default warnings, and Kurento's own at info. */
  gstDebug?: string;
  /** How long to wait for the WebSocket to accept (default 60 s: the first start builds GStreamer's registry). */
  startTimeoutMs?: number;
}

export interface KmsHandle {
  /** `ws://127.0.0.1:<port>/kurento` */
  readonly url: string;
  readonly port: number;
  /** The server's own PID (run.sh ends with exec), also its process group id. */
  readonly pid: number;
  readonly logFile: string;
  /** Milliseconds from spawn to the WebSocket accepting. */
  readonly startMs: number;
  /** Resolves with the exit code or signal once the process is gone. */
  readonly exited: Promise<string>;
  /** Sends a signal to the server's process group (SIGKILL, SIGSTOP, SIGCONT: fault tests). */
  signal(signal: NodeJS.Signals): void;
  /** SIGTERM (KMS's clean stop), SIGKILL after 10 s; resolves once it is gone. */
  stop(): Promise<void>;
}

/** The install named by `KMS_HOME`, or a clear error (KMS tests are never skipped silently). */
export function kmsHome(home = process.env.KMS_HOME): string {
  if (!home) {
    throw new Error(
      "KMS_HOME is not set: point it at a Kurento Media Server install (a folder with run.sh; README, Tests) " +
        "to run the media tests against a real KMS",
    );
  }
  const absolute = resolve(home);
  if (!existsSync(join(absolute, "run.sh"))) throw new Error(`KMS_HOME=${home} has no run.sh`);
  return absolute;
}

const BINARY = "bin/kurento-media-server";

/** Files under `lib/` that stand for a symlink: a few bytes naming a sibling file. */
function flattenedLinks(home: string): Array<{ path: string; target: string }> {
  const found: Array<{ path: string; target: string }> = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && /\.so(\.|$)/.test(entry.name) && statSync(path).size < 256) {
        const target = readFileSync(path, "utf8").trim();
        if (/^[\w.+-]+$/.test(target) && target !== entry.name && existsSync(join(dir, target))) {
          found.push({ path, target });
        }
      }
    }
  };
  walk(join(home, "lib"));
  return found;
}

/** A private, runnable copy of the install for this variant, made once and reused. */
export function runtimeHome(home: string, loopbackOnly: boolean): string {
  const stamp = statSync(join(home, BINARY)).mtimeMs;
  const key = createHash("sha256")
    .update(`${home}\0${stamp}\0${loopbackOnly ? "lo" : "all"}`)
    .digest("hex")
    .slice(0, 16);
  const root = join(tmpdir(), "edge-room-kms");
  const final = join(root, key);
  if (existsSync(join(final, ".ready"))) return final;
  // Built beside the final folder and renamed into place, so concurrent starts never see half a copy.
  const building = `${final}.${process.pid}.${randomBytes(4).toString("hex")}`;
  cpSync(home, building, { recursive: true, verbatimSymlinks: true });
  makeWritable(building);
  for (const link of flattenedLinks(building)) {
    unlinkSync(link.path);
    symlinkSync(link.target, link.path);
  }
  if (loopbackOnly) {
    const ini = join(building, "etc/kurento/modules/kurento/WebRtcEndpoint.conf.ini");
    writeFileSync(
      ini,
      `${readFileSync(ini, "utf8")}\n; edge-room tests: ICE on the loopback interface only\nnetworkInterfaces=lo\n`,
    );
  }
  writeFileSync(join(building, ".ready"), "");
  try {
    renameSync(building, final);
  } catch {
    // Another process finished the same copy first: use theirs.
    rmSync(building, { recursive: true, force: true });
  }
  return final;
}

function makeWritable(dir: string): void {
  chmodSync(dir, 0o755);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) makeWritable(path);
    else chmodSync(path, lstatSync(path).mode | 0o200);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port ? resolvePort(port) : reject(new Error("could not determine a free port"))));
    });
  });
}

/** Whether a WebSocket to `url` opens now. */
function accepts(url: string): Promise<boolean> {
  return new Promise((done) => {
    const socket = new WebSocket(url);
    const finish = (ok: boolean): void => {
      socket.removeAllListeners();
      socket.on("error", () => undefined);
      socket.terminate();
      done(ok);
    };
    socket.once("open", () => finish(true));
    socket.once("error", () => finish(false));
    socket.once("unexpected-response", () => finish(false));
  });
}

class KmsExited extends Error {}

/** Starts KMS; with no `port`, on a free one (another is tried when it was taken meanwhile). */
export async function startKms(options: KmsOptions = {}): Promise<KmsHandle> {
  const home = runtimeHome(kmsHome(options.home), options.loopbackOnly ?? false);
  const attempts = options.port === undefined ? 5 : 1;
  let last: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = options.port ?? (await freePort());
    try {
      return await startOn(home, port, options);
    } catch (error) {
      last = error;
      if (!(error instanceof KmsExited)) throw error;
    }
  }
  throw last instanceof Error ? last : new Error(String(last));
}

async function startOn(home: string, port: number, options: KmsOptions): Promise<KmsHandle> {
  const logFile = options.logFile ?? join(tmpdir(), `edge-room-kms-${port}-${Date.now()}.log`);
  const out = openSync(logFile, "a");
  const started = Date.now();
  let child: ChildProcess;
  try {
    child = spawn(join(home, "run.sh"), [String(port)], {
      // Its own process group: stop() signals the server and nothing else.
      detached: true,
      stdio: ["ignore", out, out],
      env: {
        ...process.env,
        KMS_ADDRESS: "127.0.0.1",
        GST_DEBUG: options.gstDebug ?? process.env.KMS_GST_DEBUG ?? "2,Kurento*:3,kms*:3",
        GST_DEBUG_NO_COLOR: "1",
      },
    });
  } finally {
    closeSync(out);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${home}/run.sh`);
  let gone: string | null = null;
  const exited = new Promise<string>((done) => {
    child.once("exit", (code, signal) => {
      gone = signal ?? `exit ${code}`;
      done(gone);
    });
  });
  const signal = (name: NodeJS.Signals): void => {
    if (gone !== null) return;
    try {
      process.kill(-pid, name);
    } catch {
      // Already gone.
    }
  };
  const url = `ws://127.0.0.1:${port}/kurento`;
  const deadline = started + (options.startTimeoutMs ?? 60_000);
  for (;;) {
    if (gone !== null) {
      const tail = readFileSync(logFile, "utf8").slice(-2000);
      throw new KmsExited(`KMS on port ${port} exited (${gone}) before accepting connections:\n${tail}`);
    }
    if (await accepts(url)) break;
    if (Date.now() > deadline) {
      signal("SIGKILL");
      throw new Error(
        `KMS did not accept connections on ${url} within ${options.startTimeoutMs ?? 60_000} ms (log: ${logFile})`,
      );
    }
    // Each try is a connection attempt answered at once (refused) while KMS starts; space them out.
    await new Promise((r) => setTimeout(r, 50));
  }
  const startMs = Date.now() - started;
  return {
    url,
    port,
    pid,
    logFile,
    startMs,
    exited,
    signal,
    async stop() {
      if (gone !== null) return;
      signal("SIGCONT"); // a stopped (SIGSTOP) server cannot act on SIGTERM
      signal("SIGTERM");
      const killer = setTimeout(() => signal("SIGKILL"), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/**
 * How many media objects a KMS holds: its pipelines and their children (a
 * released pipeline takes its children with it), read over a raw JSON-RPC
 * socket of its own (kurento-client is loaded by the bridge's adapter only).
 */
export async function kmsObjectCount(url: string, timeoutMs = 10_000): Promise<number> {
  const socket = new WebSocket(url);
  await new Promise<void>((done, fail) => {
    socket.once("open", () => done());
    socket.once("error", fail);
  });
  let nextId = 1;
  let sessionId: string | undefined;
  const call = (object: string, operation: string): Promise<unknown> => {
    const id = nextId++;
    const params: Record<string, unknown> = { object, operation, operationParams: {} };
    if (sessionId) params.sessionId = sessionId;
    socket.send(JSON.stringify({ jsonrpc: "2.0", id, method: "invoke", params }));
    return new Promise((done, fail) => {
      const timer = setTimeout(
        () => fail(new Error(`KMS did not answer ${operation} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onMessage = (data: WebSocketType.RawData): void => {
        const frame = JSON.parse(String(data)) as {
          id?: number;
          result?: { value?: unknown; sessionId?: string };
          error?: { message?: string };
        };
        if (frame.id !== id) return;
        socket.off("message", onMessage);
        clearTimeout(timer);
        if (frame.error) fail(new Error(`${operation}: ${frame.error.message ?? "error"}`));
        else {
          sessionId ??= frame.result?.sessionId;
          done(frame.result?.value);
        }
      };
      socket.on("message", onMessage);
    });
  };
  try {
    const pipelines = (await call("manager_ServerManager", "getPipelines")) as string[];
    let count = pipelines.length;
    for (const pipeline of pipelines) {
      // A pipeline released between the two calls has no children left to count.
      const children = await call(pipeline, "getChildren").catch(() => []);
      count += (children as string[]).length;
    }
    return count;
  } finally {
    socket.close();
  }
}
