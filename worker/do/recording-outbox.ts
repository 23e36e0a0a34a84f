/**
 * A room's outbox to the recording ledger: the core's `ledger` effects are
 * rows in the room's SQLite, written in the same step as the change they
 * report (both are committed, or neither), and sent to the ledger in order,
 * in batches, until it takes them. A failed call is retried with backoff by
 * the room's alarm, so the ledger learns everything the room decided even
 * if it or the room restarts meanwhile; every op is idempotent, so a batch
 * sent twice changes nothing. An emptied room keeps its storage until the
 * outbox is empty.
 */
import { backoffDelay } from "../../protocol/backoff.ts";
import type { LedgerOp } from "../core/types.ts";
import { readLedgerOpRow, writeLedgerOpRow } from "./persisted.ts";

/** Retries: 1 s doubling to 1 min (with jitter). */
const RETRY = { minMs: 1000, maxMs: 60_000 } as const;
/** Ops per call; a room's ops are few (a start, a file per publish, a stop), so one call is the rule. */
const BATCH = 100;
/**
 * With ops waiting and no failure known (a call in flight, or a room object that restarted), the
 * alarm still comes back this soon, so no op waits for the next event of a quiet room.
 */
const SAFETY_NET_MS = 5000;

export class RecordingOutbox {
  readonly #sql: SqlStorage;
  readonly #send: (ops: LedgerOp[]) => Promise<void>;
  readonly #log: (fields: Record<string, unknown>) => void;
  #created: boolean;
  #running: Promise<boolean> | null = null;
  #again = false;
  #failures = 0;
  #retryAt: number | null = null;

  constructor(
    sql: SqlStorage,
    send: (ops: LedgerOp[]) => Promise<void>,
    log: (fields: Record<string, unknown>) => void,
  ) {
    this.#sql = sql;
    this.#send = send;
    this.#log = log;
    this.#created =
      sql.exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ledger_outbox'`).toArray().length > 0;
  }

  /** Writes the op (synchronously, in the step that decided it); `deliver` sends it. */
  enqueue(op: LedgerOp): void {
    if (!this.#created) {
      this.#sql.exec(
        `CREATE TABLE IF NOT EXISTS ledger_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL)`,
      );
      this.#created = true;
    }
    this.#sql.exec(`INSERT INTO ledger_outbox (op) VALUES (?)`, writeLedgerOpRow(op));
  }

  empty(): boolean {
    if (!this.#created) return true;
    return this.#sql.exec(`SELECT 1 FROM ledger_outbox LIMIT 1`).toArray().length === 0;
  }

  /** The storage was deleted: the table comes back with the next op. */
  forget(): void {
    this.#created = false;
  }

  /** When the alarm should come back for the ops still waiting, or null when none is. */
  nextAt(): number | null {
    if (this.empty()) return null;
    return this.#retryAt ?? Date.now() + SAFETY_NET_MS;
  }

  /** Sends everything waiting, oldest first; true once the outbox is empty, false when a call failed. */
  deliver(): Promise<boolean> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#drain().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #drain(): Promise<boolean> {
    do {
      this.#again = false;
      for (;;) {
        if (!this.#created) return true;
        const rows = this.#sql
          .exec<{ seq: number; op: string }>(`SELECT seq, op FROM ledger_outbox ORDER BY seq LIMIT ?`, BATCH)
          .toArray();
        if (rows.length === 0) break;
        const ops = rows.map((r) => readLedgerOpRow(r.op)).filter((op): op is LedgerOp => op !== null);
        try {
          if (ops.length > 0) await this.#send(ops);
        } catch (error) {
          this.#retryAt = Date.now() + backoffDelay(this.#failures, RETRY);
          this.#failures += 1;
          this.#log({ msg: "recording ledger update failed; retrying", ops: ops.length, error: String(error) });
          return false;
        }
        this.#failures = 0;
        this.#retryAt = null;
        if (!this.#created) return true;
        this.#sql.exec(`DELETE FROM ledger_outbox WHERE seq <= ?`, rows[rows.length - 1]?.seq ?? 0);
      }
    } while (this.#again);
    return true;
  }
}
