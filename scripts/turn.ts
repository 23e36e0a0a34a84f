/**
 * A real TURN server for the tests: Debian's coturn (`turnserver`) on
 * 127.0.0.1, checking the TURN REST API credentials the worker hands out
 * (`use-auth-secret` + `static-auth-secret`, protocol/ice-servers.ts), and
 * relaying on 127.0.0.1 too, with loopback peers allowed (coturn refuses
 * them by default; every test peer lives on 127.0.0.1).
 *
 * It runs in its own process group (stop() signals it and nothing else),
 * with no configuration file (`-n`: a developer's /etc/turnserver.conf stays
 * out), its own pid file and database under the temporary directory, and is
 * ready once it answers a STUN Binding request on its port.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TurnOptions {
  /** The `static-auth-secret` (the worker's TURN_SECRET); a random one when omitted. */
  secret?: string;
  /** The realm coturn announces; default `edge-room.test`. */
  realm?: string;
  /** How long to wait for the first STUN answer (default 20 s). */
  startTimeoutMs?: number;
  /** The `turnserver` binary; default the one on PATH. */
  binary?: string;
}

export interface TurnHandle {
  /** `turn:127.0.0.1:<port>?transport=udp`, what TURN_URLS takes. */
  readonly url: string;
  readonly host: "127.0.0.1";
  readonly port: number;
  readonly secret: string;
  readonly realm: string;
  /** coturn's PID, also its process group id. */
  readonly pid: number;
  readonly logFile: string;
  /** Milliseconds from spawn to the first STUN answer. */
  readonly startMs: number;
  /** coturn's log so far. */
  log(): string;
  /** SIGTERM, SIGKILL after 5 s; resolves once it is gone. Removes its temporary folder. */
  stop(): Promise<void>;
}

const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const MAGIC_COOKIE = 0x2112a442;

/** A port that is free for both UDP and TCP on 127.0.0.1 right now (coturn listens on both). */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = createSocket("udp4");
    const port = await new Promise<number>((done, fail) => {
      udp.once("error", fail);
      udp.bind(0, "127.0.0.1", () => done(udp.address().port));
    });
    const tcpFree = await new Promise<boolean>((done) => {
      const server = createServer();
      server.once("error", () => done(false));
      server.listen(port, "127.0.0.1", () => server.close(() => done(true)));
    });
    await new Promise<void>((done) => udp.close(() => done()));
    if (tcpFree) return port;
  }
  throw new Error("could not find a port free for both UDP and TCP on 127.0.0.1");
}

/** Sends one STUN Binding request to 127.0.0.1:`port`; true when a Binding success with its transaction id comes back within `waitMs`. */
export function stunAnswers(port: number, waitMs = 300): Promise<boolean> {
  return new Promise((done) => {
    const socket = createSocket("udp4");
    const transaction = randomBytes(12);
    const request = Buffer.alloc(20);
    request.writeUInt16BE(BINDING_REQUEST, 0);
    request.writeUInt16BE(0, 2);
    request.writeUInt32BE(MAGIC_COOKIE, 4);
    transaction.copy(request, 8);
    let settled = false;
    const finish = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      done(ok);
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on("error", () => finish(false));
    socket.on("message", (message) => {
      if (
        message.length >= 20 &&
        message.readUInt16BE(0) === BINDING_SUCCESS &&
        message.readUInt32BE(4) === MAGIC_COOKIE &&
        message.subarray(8, 20).equals(transaction)
      ) {
        finish(true);
      }
    });
    socket.send(request, port, "127.0.0.1", (error) => {
      if (error) finish(false);
    });
  });
}

class TurnExited extends Error {}

/** Starts coturn on a free port (another is tried when coturn exits at once, e.g. the port was taken meanwhile). */
export async function startTurn(options: TurnOptions = {}): Promise<TurnHandle> {
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOn(await freePort(), options);
    } catch (error) {
      last = error;
      if (!(error instanceof TurnExited)) throw error;
    }
  }
  throw last instanceof Error ? last : new Error(String(last));
}

async function startOn(port: number, options: TurnOptions): Promise<TurnHandle> {
  const secret = options.secret ?? randomBytes(24).toString("hex");
  const realm = options.realm ?? "edge-room.test";
  const dir = mkdtempSync(join(tmpdir(), "edge-room-turn-"));
  const logFile = join(dir, "turnserver.log");
  const args = [
    "-n", // no configuration file: only these options
    "--listening-ip=127.0.0.1",
    `--listening-port=${port}`,
    "--relay-ip=127.0.0.1",
    "--allow-loopback-peers", // the media server and the browsers are loopback peers here
    "--no-multicast-peers",
    "--use-auth-secret",
    `--static-auth-secret=${secret}`,
    `--realm=${realm}`,
    "--fingerprint",
    "--verbose", // one line per request processed: the tests read who was allowed or refused
    "--no-cli",
    "--no-tls",
    "--no-dtls",
    "--no-software-attribute",
    `--pidfile=${join(dir, "turnserver.pid")}`,
    `--db=${join(dir, "turndb")}`,
    `--log-file=${logFile}`,
    "--simple-log",
  ];
  const out = openSync(logFile, "a");
  const started = Date.now();
  let child: ChildProcess;
  try {
    child = spawn(options.binary ?? "turnserver", args, { detached: true, stdio: ["ignore", out, out] });
  } finally {
    closeSync(out);
  }
  let gone: string | null = null;
  const exited = new Promise<string>((done) => {
    child.once("exit", (code, signal) => {
      gone = signal ?? `exit ${code}`;
      done(gone);
    });
    child.once("error", (error) => {
      gone = error.message;
      done(gone);
    });
  });
  const pid = child.pid;
  const readLog = (): string => {
    try {
      return readFileSync(logFile, "utf8");
    } catch {
      return "";
    }
  };
  const signal = (name: NodeJS.Signals): void => {
    if (gone !== null || pid === undefined) return;
    try {
      process.kill(-pid, name);
    } catch {
      // Already gone.
    }
  };
  const stop = async (): Promise<void> => {
    signal("SIGTERM");
    const killer = setTimeout(() => signal("SIGKILL"), 5000);
    await exited;
    clearTimeout(killer);
    rmSync(dir, { recursive: true, force: true });
  };
  if (pid === undefined) {
    await exited;
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start turnserver (${gone}); install Debian's coturn (apt-get install coturn)`);
  }
  const timeoutMs = options.startTimeoutMs ?? 20_000;
  for (;;) {
    if (gone !== null) {
      const tail = readLog().slice(-2000);
      rmSync(dir, { recursive: true, force: true });
      throw new TurnExited(`turnserver on port ${port} exited (${gone}) before answering STUN:\n${tail}`);
    }
    if (await stunAnswers(port)) break;
    if (Date.now() - started > timeoutMs) {
      const tail = readLog().slice(-2000);
      await stop();
      throw new Error(`turnserver did not answer STUN on 127.0.0.1:${port} within ${timeoutMs} ms:\n${tail}`);
    }
  }
  return {
    url: `turn:127.0.0.1:${port}?transport=udp`,
    host: "127.0.0.1",
    port,
    secret,
    realm,
    pid,
    logFile,
    startMs: Date.now() - started,
    log: readLog,
    stop,
  };
}
