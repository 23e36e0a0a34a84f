/**
 * The journal beside each recorded file (`<file>.upload.json`): everything
 * the bridge needs to finish that file's delivery after a restart — the
 * upload token, the file's metadata, and how far its multipart upload got.
 * It is written atomically (a temporary file, fsync, rename), so a crash
 * leaves either the old journal or the new one, never half of one.
 *
 * States:
 * - `recording`: the media server is writing the file (a journal still in
 *   this state at start means the bridge stopped mid-recording);
 * - `ready`: the file is complete, its metadata known: upload it;
 * - `failed`: the file cannot be delivered: report `reason` to the worker;
 * - `done`: delivered or reported; only the local clean-up is left.
 *
 * Layout: `<RECORDINGS_DIR>/<recording id>/<file name>` and its journal.
 * Ids and names are restricted by protocol/recordings.ts to URL-safe
 * characters, so they are safe path segments too.
 */
import { randomBytes } from "node:crypto";
import { open, readdir, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { recordingFileName, recordingId, uploadPartResponse } from "../../protocol/recordings.ts";

export const JOURNAL_SUFFIX = ".upload.json";
/** Temporary journals: `<journal>.<pid>.<random>.tmp`. */
const TEMPORARY = /\.upload\.json\.(\d+)\.[0-9a-f]+\.tmp$/;

export const JOURNAL_STATES = ["recording", "ready", "failed", "done"] as const;
export type JournalState = (typeof JOURNAL_STATES)[number];

const epochMs = z.number().int().min(0);

export const journalSchema = z.object({
  version: z.literal(1),
  recording: recordingId,
  file: recordingFileName,
  /** For logs and for the worker's own bookkeeping; the upload API does not need them. */
  room: z.string().max(1024),
  user: z.string().max(1024),
  stream: z.string().max(64),
  token: z.string().min(1).max(4096),
  /** The recording's start (worker's clock): the origin of `startOffsetMs`. */
  startedAt: epochMs,
  state: z.enum(JOURNAL_STATES),
  /** When the media server began writing (bridge's clock, its `Recording` event). */
  since: epochMs.optional(),
  /** Set with `ready`. */
  bytes: z.number().int().min(0).optional(),
  startOffsetMs: z.number().int().min(0).optional(),
  durationMs: z.number().int().min(0).optional(),
  /** Why the file failed (`failed`), or a note on how it ended (a cut file). */
  reason: z.string().max(1024).optional(),
  /** The multipart upload under way: its id and the parts the worker confirmed. */
  upload: z.object({ uploadId: z.string().min(1).max(1024), parts: z.array(uploadPartResponse) }).optional(),
});
export type Journal = z.infer<typeof journalSchema>;

/** Where files and journals live, for the bridge and for the media server. */
export class RecordingPaths {
  /** RECORDINGS_DIR, as the bridge sees it. */
  readonly dir: string;
  /** The same directory as the media server sees it (MEDIA_RECORDINGS_DIR). */
  readonly mediaDir: string;

  constructor(dir: string, mediaDir: string) {
    this.dir = dir;
    this.mediaDir = mediaDir;
  }

  folder(recording: string): string {
    return join(this.dir, recording);
  }

  file(recording: string, file: string): string {
    return join(this.dir, recording, file);
  }

  journal(recording: string, file: string): string {
    return `${this.file(recording, file)}${JOURNAL_SUFFIX}`;
  }

  /** The recorder's URI: a `file://` URL of the media server's own path (percent-encoded per segment). */
  mediaUri(recording: string, file: string): string {
    const segments = [...this.mediaDir.split("/"), recording, file].filter((segment) => segment !== "");
    return `file:///${segments.map(encodeURIComponent).join("/")}`;
  }

  /** The recorded file a journal describes. */
  fileOfJournal(journalPath: string): string {
    return journalPath.slice(0, -JOURNAL_SUFFIX.length);
  }
}

/**
 * Replaces the journal at `path` with `journal`, atomically: readers (and a
 * bridge restarted after a crash) see the old content or the new, whole.
 * Mode 0600: the journal carries the upload token.
 */
export async function writeJournal(path: string, journal: Journal): Promise<void> {
  const text = JSON.stringify(journalSchema.parse(journal));
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const handle = await open(temporary, "w", 0o600);
  try {
    await handle.writeFile(text);
    // Without this, a power cut after the rename could leave an empty file under the journal's name.
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}

export type JournalRead =
  | { readonly ok: true; readonly journal: Journal }
  | { readonly ok: false; readonly missing: boolean; readonly problem: string };

export async function readJournal(path: string): Promise<JournalRead> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
    return { ok: false, missing, problem: error instanceof Error ? error.message : String(error) };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, missing: false, problem: "not JSON" };
  }
  const parsed = journalSchema.safeParse(value);
  if (!parsed.success) {
    const problem = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ");
    return { ok: false, missing: false, problem };
  }
  return { ok: true, journal: parsed.data };
}

/**
 * Every journal under `dir` (`<dir>/<recording id>/<file>.upload.json`).
 * Temporary journals left by an earlier process (a crash between writing
 * and renaming) are deleted: the journal they were to replace is intact.
 */
export async function scanJournals(dir: string): Promise<string[]> {
  const found: string[] = [];
  let recordings: string[];
  try {
    recordings = (await readdir(dir, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory() && recordingId.safeParse(entry.name).success)
      .map((entry) => entry.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return found;
    throw error;
  }
  for (const recording of recordings.sort()) {
    const folder = join(dir, recording);
    let names: string[];
    try {
      names = await readdir(folder);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      const temporary = TEMPORARY.exec(name);
      if (temporary) {
        if (Number(temporary[1]) !== process.pid) await unlink(join(folder, name)).catch(() => undefined);
        continue;
      }
      if (name.endsWith(JOURNAL_SUFFIX)) found.push(join(folder, name));
    }
  }
  return found;
}
