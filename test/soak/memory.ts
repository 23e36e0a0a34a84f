/**
 * The worker's memory, as the operating system sees it: the resident set
 * (VmRSS) of the processes in the `wrangler dev` process group. The launcher
 * (scripts/wrangler-dev.ts) starts `npx wrangler dev` detached, so its pid is
 * the group id, and workerd (the runtime holding every Durable Object) runs in
 * that group. Linux only (/proc).
 */
import { readdirSync, readFileSync } from "node:fs";

export interface GroupMemory {
  /** RSS of the workerd processes of the group, in bytes (the worker and its Durable Objects). */
  readonly workerdBytes: number;
  /** RSS of every process of the group (npx, wrangler's Node, workerd), in bytes. */
  readonly groupBytes: number;
  /** The workerd processes found (a pid that changes between samples means workerd restarted). */
  readonly workerdPids: number[];
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
  const workerdPids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const info = processGroup(entry);
    if (!info || info.pgrp !== pgid) continue;
    const rss = rssBytes(entry);
    groupBytes += rss;
    if (info.name === "workerd") {
      workerdBytes += rss;
      workerdPids.push(Number(entry));
    }
  }
  return { workerdBytes, groupBytes, workerdPids };
}

export function megabytes(bytes: number): number {
  return Math.round((bytes / (1024 * 1024)) * 10) / 10;
}
