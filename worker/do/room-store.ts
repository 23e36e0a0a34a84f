/**
 * The room's durable state in the object's SQLite storage. The in-memory
 * RoomState is a cache of these rows; `save` writes only what an input changed
 * (found by reference: the core shares unchanged participants structurally).
 */
import type { Participant, PendingMedia, RoomState } from "../core/types.ts";
import { emptyRoom } from "../core/types.ts";

export class RoomStore {
  readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS participants (session TEXT PRIMARY KEY, data TEXT NOT NULL)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS pending (ref TEXT PRIMARY KEY, data TEXT NOT NULL)`);
  }

  roomName(): string | null {
    const row = this.sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'room'`).toArray()[0];
    return row ? row.value : null;
  }

  setRoomName(room: string): void {
    this.sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('room', ?)`, room);
  }

  load(room: string): RoomState {
    const seqRow = this.sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'seq'`).toArray()[0];
    const participants = new Map<string, Participant>();
    for (const row of this.sql.exec<{ session: string; data: string }>(`SELECT session, data FROM participants`)) {
      participants.set(row.session, JSON.parse(row.data) as Participant);
    }
    const pending = new Map<string, PendingMedia>();
    for (const row of this.sql.exec<{ ref: string; data: string }>(`SELECT ref, data FROM pending`)) {
      pending.set(row.ref, JSON.parse(row.data) as PendingMedia);
    }
    return { ...emptyRoom(room), seq: seqRow ? Number(seqRow.value) : 0, participants, pending };
  }

  save(before: RoomState, after: RoomState): void {
    if (before === after) return;
    if (before.seq !== after.seq) {
      this.sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('seq', ?)`, String(after.seq));
    }
    if (before.participants !== after.participants) {
      for (const [session, p] of after.participants) {
        if (before.participants.get(session) !== p) {
          this.sql.exec(`INSERT OR REPLACE INTO participants (session, data) VALUES (?, ?)`, session, JSON.stringify(p));
        }
      }
      for (const session of before.participants.keys()) {
        if (!after.participants.has(session)) this.sql.exec(`DELETE FROM participants WHERE session = ?`, session);
      }
    }
    if (before.pending !== after.pending) {
      for (const [ref, entry] of after.pending) {
        if (before.pending.get(ref) !== entry) {
          this.sql.exec(`INSERT OR REPLACE INTO pending (ref, data) VALUES (?, ?)`, ref, JSON.stringify(entry));
        }
      }
      for (const ref of before.pending.keys()) {
        if (!after.pending.has(ref)) this.sql.exec(`DELETE FROM pending WHERE ref = ?`, ref);
      }
    }
  }
}
