/**
 * The recording ledger's rules, pure: what a recording's status is once it
 * stopped, given its files. A running recording stays `recording` whatever
 * its files do; a stopped one is `stopping` while any file is still on its
 * way, then `ready` when all arrived, or `failed` naming the files that did
 * not.
 */
import type { RecordingFile, RecordingStatus } from "../../protocol/recordings.ts";

type FileStatus = RecordingFile["status"];

/** Why the ledger failed a file nobody delivered in time (RECORDING_UPLOAD_TIMEOUT_SECONDS). */
export const NEVER_DELIVERED = "the media bridge never delivered the file";

/** Files still on their way: being recorded, or uploaded. */
export const UNDELIVERED: readonly FileStatus[] = ["recording", "uploading"];

export function isUndelivered(status: FileStatus): boolean {
  return UNDELIVERED.includes(status);
}

export interface SettledStatus {
  readonly status: RecordingStatus;
  readonly reason?: string;
}

/** The status of a recording whose status is `current`, given its files now. */
export function settledStatus(
  current: RecordingStatus,
  files: ReadonlyArray<{ readonly name: string; readonly status: FileStatus; readonly reason?: string }>,
): SettledStatus {
  if (current === "recording") return { status: "recording" };
  if (files.some((f) => isUndelivered(f.status))) return { status: "stopping" };
  const failed = files.filter((f) => f.status === "failed");
  if (failed.length === 0) return { status: "ready" };
  const reason = failed.map((f) => `file ${f.name} failed: ${f.reason ?? "no reason given"}`).join("; ");
  return { status: "failed", reason };
}
