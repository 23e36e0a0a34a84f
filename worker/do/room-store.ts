/**
 * The room's durable state in the object's SQLite storage. The in-memory
 * RoomState is a cache of these rows; `save` writes only what an input changed
 * (found by reference: the core shares unchanged participants structurally).
 */
import type { Participant, PendingMedia, RoomState } from "../core/types.ts";
import { emptyRoom } from "../core/types.ts";
import { readParticipantRow, readPendingRow, writeRow } from "./persisted.ts";

export class RoomStore {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS participants (session TEXT PRIMARY KEY, data TEXT NOT NULL)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS pending (ref TEXT PRIMARY KEY, data TEXT NOT NULL)`);
  }

  roomName(): string | null {
    const row = this.#sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'room'`).toArray()[0];
    return row ? row.value : null;
  }

  /** Records `id` as the object's live instance (the newest one to start). */
  claimInstance(id: string): void {
    this.#sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('instance', ?)`, id);
  }

  instance(): string | null {
    const row = this.#sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'instance'`).toArray()[0];
    return row ? row.value : null;
  }

  setRoomName(room: string): void {
    this.#sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('room', ?)`, room);
  }

  load(room: string): RoomState {
    const seqRow = this.#sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'seq'`).toArray()[0];
    const participants = new Map<string, Participant>();
    for (const row of this.#sql.exec<{ session: string; data: string }>(`SELECT session, data FROM participants`)) {
      const participant = readParticipantRow(row.data);
      if (participant) participants.set(row.session, participant);
    }
    const pending = new Map<string, PendingMedia>();
    for (const row of this.#sql.exec<{ ref: string; data: string }>(`SELECT ref, data FROM pending`)) {
      const entry = readPendingRow(row.data);
      if (entry) pending.set(row.ref, entry);
    }
    return { ...emptyRoom(room), seq: seqRow ? Number(seqRow.value) : 0, participants, pending };
  }

  save(before: RoomState, after: RoomState): void {
    if (before === after) return;
    if (before.seq !== after.seq) {
      this.#sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('seq', ?)`, String(after.seq));
    }
    if (before.participants !== after.participants) {
      this.#saveRows("participants", "session", before.participants, after.participants);
    }
    if (before.pending !== after.pending) this.#saveRows("pending", "ref", before.pending, after.pending);
  }

  /** Writes the rows whose value changed (by reference) and deletes the keys that went away. */
  #saveRows<V extends Participant | PendingMedia>(
    table: "participants" | "pending",
    key: "session" | "ref",
    before: ReadonlyMap<string, V>,
    after: ReadonlyMap<string, V>,
  ): void {
    for (const [k, value] of after) {
      if (before.get(k) === value) continue;
      this.#sql.exec(`INSERT OR REPLACE INTO ${table} (${key}, data) VALUES (?, ?)`, k, writeRow(value));
    }
    for (const k of before.keys()) {
      if (!after.has(k)) this.#sql.exec(`DELETE FROM ${table} WHERE ${key} = ?`, k);
    }
  }
}
