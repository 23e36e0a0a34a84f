/**
 * The recording ledger's SQLite tables: one row per recording and one per
 * file, nothing else (no upload parts, no bytes), so the ledger stays small
 * however much is recorded. Reads come back as the REST API's shapes
 * (protocol/recordings.ts).
 */
import * as z from "zod";
import { FILE_STATUSES, RECORDING_STATUSES, type Recording, type RecordingFile } from "../../protocol/recordings.ts";
import type { LedgerFile } from "../core/types.ts";
import { UNDELIVERED } from "../recordings/ledger-rules.ts";

const recordingRow = z.object({
  id: z.string(),
  room: z.string(),
  name: z.string().nullable(),
  status: z.enum(RECORDING_STATUSES),
  started_at: z.number(),
  stopped_at: z.number().nullable(),
  reason: z.string().nullable(),
});
type RecordingRow = z.infer<typeof recordingRow>;

const fileRow = z.object({
  recording: z.string(),
  name: z.string(),
  user: z.string(),
  stream: z.string(),
  status: z.enum(FILE_STATUSES),
  bytes: z.number(),
  start_offset_ms: z.number(),
  duration_ms: z.number(),
  reason: z.string().nullable(),
  ended_at: z.number().nullable(),
});
type FileRow = z.infer<typeof fileRow>;

/** The SQL of `UNDELIVERED`, for `status IN (…)`. */
const UNDELIVERED_SQL = UNDELIVERED.map((s) => `'${s}'`).join(", ");

export class LedgerStore {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS recordings (
      id TEXT PRIMARY KEY, room TEXT NOT NULL, name TEXT, status TEXT NOT NULL,
      started_at INTEGER NOT NULL, stopped_at INTEGER, reason TEXT)`);
    sql.exec(`CREATE INDEX IF NOT EXISTS recordings_by_room ON recordings (room, started_at)`);
    sql.exec(`CREATE INDEX IF NOT EXISTS recordings_by_start ON recordings (started_at)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS files (
      recording TEXT NOT NULL, name TEXT NOT NULL, user TEXT NOT NULL, stream TEXT NOT NULL,
      status TEXT NOT NULL, bytes INTEGER NOT NULL, start_offset_ms INTEGER NOT NULL,
      duration_ms INTEGER NOT NULL, reason TEXT, ended_at INTEGER, PRIMARY KEY (recording, name))`);
  }

  recordingRow(id: string): RecordingRow | null {
    const row = this.#sql.exec(`SELECT * FROM recordings WHERE id = ?`, id).toArray()[0];
    return row === undefined ? null : recordingRow.parse(row);
  }

  fileRows(id: string): FileRow[] {
    return this.#sql
      .exec(`SELECT * FROM files WHERE recording = ? ORDER BY CAST(name AS INTEGER), name`, id)
      .toArray()
      .map((row) => fileRow.parse(row));
  }

  get(id: string): Recording | null {
    const row = this.recordingRow(id);
    return row === null ? null : toRecording(row, this.fileRows(id));
  }

  /** Newest first; `room` null: every room's. */
  list(room: string | null, limit: number): Recording[] {
    const rows =
      room === null
        ? this.#sql.exec(`SELECT * FROM recordings ORDER BY started_at DESC, id DESC LIMIT ?`, limit)
        : this.#sql.exec(
            `SELECT * FROM recordings WHERE room = ? ORDER BY started_at DESC, id DESC LIMIT ?`,
            room,
            limit,
          );
    return rows.toArray().map((raw) => {
      const row = recordingRow.parse(raw);
      return toRecording(row, this.fileRows(row.id));
    });
  }

  /** A new recording (nothing when it exists: ops are retried). */
  insertRecording(id: string, room: string, name: string | null, startedAt: number): void {
    this.#sql.exec(
      `INSERT OR IGNORE INTO recordings (id, room, name, status, started_at) VALUES (?, ?, ?, 'recording', ?)`,
      id,
      room,
      name,
      startedAt,
    );
  }

  /** A new file, still being recorded; `endedAt` when its recording already stopped. */
  insertFile(id: string, file: LedgerFile, endedAt: number | null): void {
    this.#sql.exec(
      `INSERT OR IGNORE INTO files (recording, name, user, stream, status, bytes, start_offset_ms, duration_ms, ended_at)
       VALUES (?, ?, ?, ?, 'recording', 0, ?, 0, ?)`,
      id,
      file.name,
      file.user,
      file.stream,
      file.startOffsetMs,
      endedAt,
    );
  }

  /** The file's stream ended at `at` (the first time counts). */
  endFile(id: string, name: string, at: number): void {
    this.#sql.exec(`UPDATE files SET ended_at = COALESCE(ended_at, ?) WHERE recording = ? AND name = ?`, at, id, name);
  }

  /** Every file of the recording ended at `at` (those that had not already). */
  endAllFiles(id: string, at: number): void {
    this.#sql.exec(`UPDATE files SET ended_at = COALESCE(ended_at, ?) WHERE recording = ?`, at, id);
  }

  stopRecording(id: string, at: number): void {
    this.#sql.exec(
      `UPDATE recordings SET status = 'stopping', stopped_at = COALESCE(stopped_at, ?) WHERE id = ? AND status = 'recording'`,
      at,
      id,
    );
  }

  setRecordingStatus(id: string, status: Recording["status"], reason: string | null): void {
    this.#sql.exec(`UPDATE recordings SET status = ?, reason = ? WHERE id = ?`, status, reason, id);
  }

  /** The bridge started uploading the file (its stream has ended, whether or not the room said so yet). */
  uploading(id: string, name: string, now: number): void {
    this.#sql.exec(
      `UPDATE files SET status = 'uploading', ended_at = COALESCE(ended_at, ?) WHERE recording = ? AND name = ?`,
      now,
      id,
      name,
    );
  }

  delivered(id: string, name: string, done: { bytes: number; startOffsetMs: number; durationMs: number }): void {
    this.#sql.exec(
      `UPDATE files SET status = 'ready', bytes = ?, start_offset_ms = ?, duration_ms = ?, reason = NULL
       WHERE recording = ? AND name = ?`,
      done.bytes,
      done.startOffsetMs,
      done.durationMs,
      id,
      name,
    );
  }

  /** Fails the file unless it was delivered already. */
  failFile(id: string, name: string, reason: string): void {
    this.#sql.exec(
      `UPDATE files SET status = 'failed', reason = ? WHERE recording = ? AND name = ? AND status IN (${UNDELIVERED_SQL})`,
      reason,
      id,
      name,
    );
  }

  /** Files not delivered whose stream ended at or before `endedBy`: the recordings they belong to. */
  failOverdue(endedBy: number, reason: string): string[] {
    const overdue = this.#sql
      .exec<{ recording: string; name: string }>(
        `SELECT recording, name FROM files WHERE status IN (${UNDELIVERED_SQL}) AND ended_at IS NOT NULL AND ended_at <= ?`,
        endedBy,
      )
      .toArray();
    for (const { recording, name } of overdue) this.failFile(recording, name, reason);
    return [...new Set(overdue.map((f) => f.recording))];
  }

  /** When the earliest undelivered file's stream ended, or null. */
  earliestUndeliveredEnd(): number | null {
    const row = this.#sql
      .exec<{ at: number | null }>(
        `SELECT MIN(ended_at) AS at FROM files WHERE status IN (${UNDELIVERED_SQL}) AND ended_at IS NOT NULL`,
      )
      .toArray()[0];
    return row?.at ?? null;
  }

  remove(id: string): void {
    this.#sql.exec(`DELETE FROM files WHERE recording = ?`, id);
    this.#sql.exec(`DELETE FROM recordings WHERE id = ?`, id);
  }
}

function toRecording(row: RecordingRow, files: FileRow[]): Recording {
  return {
    id: row.id,
    room: row.room,
    ...(row.name === null ? {} : { name: row.name }),
    status: row.status,
    startedAt: new Date(row.started_at).toISOString(),
    ...(row.stopped_at === null ? {} : { stoppedAt: new Date(row.stopped_at).toISOString() }),
    ...(row.reason === null ? {} : { reason: row.reason }),
    files: files.map(toFile),
  };
}

function toFile(row: FileRow): RecordingFile {
  return {
    name: row.name,
    user: row.user,
    stream: row.stream,
    status: row.status,
    bytes: row.bytes,
    startOffsetMs: row.start_offset_ms,
    durationMs: row.duration_ms,
    ...(row.reason === null ? {} : { reason: row.reason }),
  };
}
