/**
 * The worker's memory, as the operating system sees it: the resident set
 * (VmRSS) of the processes in the `wrangler dev` process group. The launcher
 * (scripts/wrangler-dev.ts) starts `npx wrangler dev` detached, so its pid is
 * the group id, and workerd (the runtime holding every Durable Object) runs in
 * that group. Linux only (/proc). Also the isolate's live JavaScript heap, through wrangler's
 * inspector.
 */
import { readdirSync, readFileSync } from "node:fs";
import WebSocket from "ws";

export interface GroupMemory {
  /** RSS of the workerd processes of the group, in bytes (the worker and its Durable Objects). */
  readonly workerdBytes: number;
  /** RSS of every process of the group (npx, wrangler's Node, workerd), in bytes. */
  readonly groupBytes: number;
  /** Each workerd process (wrangler dev runs two: its proxy and the runtime); a pid that changes between samples means workerd restarted. */
  readonly workerd: Array<{ readonly pid: number; readonly bytes: number }>;
}

/** The process group of `pid`, read from /proc/<pid>/stat (field 5; the name in field 2 may hold spaces). */
function processGroup(pid: string): { pgrp: number; name: string } | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null; // exited meanwhile
  }
  const open = stat.indexOf("(");
  const close = stat.lastIndexOf(")");
  if (open < 0 || close < 0) return null;
  const fields = stat.slice(close + 2).split(" ");
  // After the name: state, ppid, pgrp.
  const pgrp = Number(fields[2]);
  return Number.isInteger(pgrp) ? { pgrp, name: stat.slice(open + 1, close) } : null;
}

function rssBytes(pid: string): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0; // exited meanwhile
  }
}

/** The memory of process group `pgid` now. */
export function groupMemory(pgid: number): GroupMemory {
  let workerdBytes = 0;
  let groupBytes = 0;
  const workerd: Array<{ pid: number; bytes: number }> = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const info = processGroup(entry);
    if (!info || info.pgrp !== pgid) continue;
    const rss = rssBytes(entry);
    groupBytes += rss;
    if (info.name === "workerd") {
      workerdBytes += rss;
      workerd.push({ pid: Number(entry), bytes: rss });
    }
  }
  return { workerdBytes, groupBytes, workerd };
}

export function megabytes(bytes: number): number {
  return Math.round((bytes / (1024 * 1024)) * 10) / 10;
}

/**
 * The `--inspector-port` wrangler dev was started with, read from the command line of a process
 * in the group (scripts/wrangler-dev.ts picks it and passes it to `wrangler dev`).
 */
function inspectorPort(pgid: number): number | null {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || processGroup(entry)?.pgrp !== pgid) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    const at = args.indexOf("--inspector-port");
    const port = at >= 0 ? Number(args[at + 1]) : Number.NaN;
    if (Number.isInteger(port) && port > 0) return port;
  }
  return null;
}

/**
 * The worker isolate's live JavaScript heap (the worker and every Durable Object of this
 * `wrangler dev`), in bytes, after a forced full GC, through wrangler's inspector (Chrome DevTools
 * protocol: HeapProfiler.collectGarbage, then Runtime.getHeapUsage). Unlike RSS, which also holds
 * workerd's native memory and garbage V8 has not collected yet, this is what the code keeps alive,
 * so it is what a leak in the room code would grow. Null when the inspector cannot be reached.
 */
export async function workerHeapAfterGc(pgid: number, timeoutMs = 15_000): Promise<number | null> {
  const port = inspectorPort(pgid);
  if (port === null) return null;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  const timer = setTimeout(() => ws.terminate(), timeoutMs);
  try {
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
      ws.once("close", () => reject(new Error("inspector closed")));
    });
    let nextId = 0;
    const call = (method: string): Promise<Record<string, unknown>> =>
      new Promise((resolve, reject) => {
        const id = ++nextId;
        const onMessage = (data: WebSocket.RawData): void => {
          const message = JSON.parse(data.toString()) as {
            id?: number;
            result?: Record<string, unknown>;
            error?: unknown;
          };
          if (message.id !== id) return;
          ws.off("message", onMessage);
          if (message.result) resolve(message.result);
          else reject(new Error(`${method}: ${JSON.stringify(message.error)}`));
        };
        ws.on("message", onMessage);
        ws.once("close", () => reject(new Error("inspector closed")));
        ws.send(JSON.stringify({ id, method }));
      });
    await call("HeapProfiler.collectGarbage");
    const usage = await call("Runtime.getHeapUsage");
    return typeof usage.usedSize === "number" ? usage.usedSize : null;
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
    ws.close();
  }
}
