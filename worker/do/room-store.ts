/**
 * The room's durable state in the object's SQLite storage. The in-memory
 * RoomState is a cache of these rows; `save` writes only what an input changed
 * (found by reference: the core shares unchanged participants structurally).
 */
import type { Participant, PendingMedia, RoomState } from "../core/types.ts";
import { emptyRoom } from "../core/types.ts";
import { readParticipantRow, readPendingRow, readRecordingRow, writeRow } from "./persisted.ts";

export class RoomStore {
  readonly #sql: SqlStorage;
  /** This object instance's id: the newest instance to write claims the room (see `instance`). */
  readonly #instance: string;
  /**
   * Whether the tables exist. A room object that never had anyone in it (a
   * stray upgrade, `/close` for an unknown room) creates none: it stores nothing.
   */
  #created: boolean;

  constructor(sql: SqlStorage, instance: string) {
    this.#sql = sql;
    this.#instance = instance;
    this.#created = sql.exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'`).toArray().length > 0;
    if (this.#created) this.#claimInstance();
  }

  /** Whether anything is stored. */
  get stored(): boolean {
    return this.#created;
  }

  /** Creates the tables on the first write, with the room's name and this instance's claim. */
  #create(room: string): void {
    if (this.#created) return;
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS participants (session TEXT PRIMARY KEY, data TEXT NOT NULL)`);
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS pending (ref TEXT PRIMARY KEY, data TEXT NOT NULL)`);
    this.#sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('room', ?)`, room);
    this.#created = true;
    this.#claimInstance();
  }

  /** Records this instance as the object's live one (the newest one to start or write). */
  #claimInstance(): void {
    this.#sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('instance', ?)`, this.#instance);
  }

  /**
   * The storage was deleted (ctx.storage.deleteAll): the next write creates the tables again.
   * Until then no instance holds the claim, which only matters to an object with media in flight,
   * and an emptied room has none.
   */
  forget(): void {
    this.#created = false;
  }

  #meta(key: string): string | null {
    if (!this.#created) return null;
    const row = this.#sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = ?`, key).toArray()[0];
    return row ? row.value : null;
  }

  roomName(): string | null {
    return this.#meta("room");
  }

  /** Whether the RoomDirectory is known to list the room. */
  listed(): boolean {
    return this.#meta("listed") === "1";
  }

  setListed(listed: boolean): void {
    if (!this.#created) return;
    if (listed) this.#sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('listed', '1')`);
    else this.#sql.exec(`DELETE FROM meta WHERE key = 'listed'`);
  }

  /** The id of the room's live instance (null while nothing is stored). */
  instance(): string | null {
    return this.#meta("instance");
  }

  load(room: string): RoomState {
    if (!this.#created) return emptyRoom(room);
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
    const recording = this.#meta("recording");
    return {
      ...emptyRoom(room),
      seq: seqRow ? Number(seqRow.value) : 0,
      participants,
      pending,
      recording: recording === null ? null : readRecordingRow(recording),
    };
  }

  save(before: RoomState, after: RoomState): void {
    if (before === after) return;
    this.#create(after.room);
    if (before.seq !== after.seq) {
      this.#sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('seq', ?)`, String(after.seq));
    }
    if (before.participants !== after.participants) {
      this.#saveRows("participants", "session", before.participants, after.participants);
    }
    if (before.pending !== after.pending) this.#saveRows("pending", "ref", before.pending, after.pending);
    if (before.recording !== after.recording) {
      if (after.recording === null) this.#sql.exec(`DELETE FROM meta WHERE key = 'recording'`);
      else {
        const row = writeRow(after.recording);
        this.#sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('recording', ?)`, row);
      }
    }
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
