/**
 * The room's webhook outbox: events are rows in the room's own SQLite (one
 * per event and receiver), written in the same step as the change they
 * report, and sent from there in order, one at a time per receiver, until the
 * receiver answers 2xx. A failed attempt is retried with backoff by the
 * room's alarm, so a receiver that is down for minutes, or a room object that
 * restarts meanwhile, loses nothing: delivery is at least once (a retry
 * carries the same id), in order per room and receiver.
 *
 * Why the room's storage and not Cloudflare Queues: a queue does not keep the
 * order of one room's events (retries and batches interleave), and the
 * room's SQLite already commits each change atomically with its event.
 */
import { backoffDelay } from "../../protocol/backoff.ts";
import {
  EVENT_ID_HEADER,
  SIGNATURE_HEADER,
  signWebhook,
  TIMESTAMP_HEADER,
  type WebhookEvent,
} from "../../protocol/webhooks.ts";
import type { RoomEvent } from "../core/room-events.ts";

/** Retries: 1 s doubling to 5 min (with jitter). */
const RETRY = { minMs: 1000, maxMs: 300_000 } as const;
/** One attempt may take this long before it counts as failed. */
const ATTEMPT_TIMEOUT_MS = 10_000;

export interface WebhookSettings {
  readonly urls: readonly string[];
  readonly secret: string;
  /** An event not delivered after this long is dropped (logged). */
  readonly maxAgeMs: number;
}

type Row = {
  seq: number;
  event: string;
  created: number;
  attempts: number;
  next_at: number;
};

export class WebhookOutbox {
  readonly #sql: SqlStorage;
  readonly #settings: WebhookSettings | null;
  readonly #log: (fields: Record<string, unknown>) => void;
  #created: boolean;
  #running: Promise<void> | null = null;
  #again = false;

  constructor(sql: SqlStorage, settings: WebhookSettings | null, log: (fields: Record<string, unknown>) => void) {
    this.#sql = sql;
    this.#settings = settings;
    this.#log = log;
    this.#created =
      sql.exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'webhook_outbox'`).toArray().length > 0;
  }

  #create(): void {
    if (this.#created) return;
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS webhook_outbox (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL, event TEXT NOT NULL,
      created INTEGER NOT NULL, attempts INTEGER NOT NULL, next_at INTEGER NOT NULL)`);
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS webhook_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)`);
    this.#created = true;
  }

  /** Whether any receiver is configured (WEBHOOK_URLS). */
  get enabled(): boolean {
    return this.#settings !== null;
  }

  /** The storage was deleted: the tables come back with the next event. */
  forget(): void {
    this.#created = false;
  }

  /** Nothing waits to be sent. */
  empty(): boolean {
    if (!this.#created) return true;
    return this.#sql.exec(`SELECT 1 FROM webhook_outbox LIMIT 1`).toArray().length === 0;
  }

  /** Writes the events (synchronously, in the step that caused them); `deliver` sends them. */
  enqueue(room: string, events: readonly RoomEvent[], now: number): void {
    const settings = this.#settings;
    if (!settings || events.length === 0) return;
    this.#create();
    const row = this.#sql.exec<{ value: number }>(`SELECT value FROM webhook_meta WHERE key = 'seq'`).toArray()[0];
    let seq = row?.value ?? 0;
    for (const { type, data } of events) {
      seq += 1;
      const event: WebhookEvent = { id: crypto.randomUUID(), type, room, timestamp: now, seq, data: { ...data } };
      const text = JSON.stringify(event);
      for (const url of settings.urls) {
        this.#sql.exec(
          `INSERT INTO webhook_outbox (url, event, created, attempts, next_at) VALUES (?, ?, ?, 0, ?)`,
          url,
          text,
          now,
          now,
        );
      }
    }
    this.#sql.exec(`INSERT OR REPLACE INTO webhook_meta (key, value) VALUES ('seq', ?)`, seq);
  }

  /** When the next retry is due (the earliest head of a receiver's queue), or null. */
  nextAt(): number | null {
    if (!this.#settings || !this.#created) return null;
    let at: number | null = null;
    for (const url of this.#settings.urls) {
      const head = this.#head(url);
      if (head && (at === null || head.next_at < at)) at = head.next_at;
    }
    return at;
  }

  /** Sends what is due, each receiver's events in order; resolves when every receiver is done or waiting. */
  deliver(): Promise<void> {
    if (!this.#settings || !this.#created) return Promise.resolve();
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    const settings = this.#settings;
    this.#running = (async () => {
      do {
        this.#again = false;
        await Promise.all(settings.urls.map((url) => this.#drain(url, settings)));
      } while (this.#again);
    })().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  #head(url: string): Row | undefined {
    return this.#sql
      .exec<Row>(
        `SELECT seq, event, created, attempts, next_at FROM webhook_outbox WHERE url = ? ORDER BY seq LIMIT 1`,
        url,
      )
      .toArray()[0];
  }

  async #drain(url: string, settings: WebhookSettings): Promise<void> {
    for (;;) {
      if (!this.#created) return;
      const head = this.#head(url);
      if (!head) return;
      const now = Date.now();
      if (head.created + settings.maxAgeMs <= now) {
        this.#log({ msg: "webhook event dropped: not delivered in time", url, attempts: head.attempts });
        this.#sql.exec(`DELETE FROM webhook_outbox WHERE seq = ?`, head.seq);
        continue;
      }
      if (head.next_at > now) return;
      const failure = await this.#post(url, head.event, settings.secret);
      if (!this.#created) return;
      if (failure === null) {
        this.#sql.exec(`DELETE FROM webhook_outbox WHERE seq = ?`, head.seq);
        continue;
      }
      const nextAt = Date.now() + backoffDelay(head.attempts, RETRY);
      this.#sql.exec(`UPDATE webhook_outbox SET attempts = attempts + 1, next_at = ? WHERE seq = ?`, nextAt, head.seq);
      this.#log({ msg: "webhook delivery failed; will retry", url, attempt: head.attempts + 1, error: failure });
      return;
    }
  }

  /** null on a 2xx answer; otherwise what went wrong. */
  async #post(url: string, body: string, secret: string): Promise<string | null> {
    const timestamp = Math.floor(Date.now() / 1000);
    const id = (JSON.parse(body) as { id: string }).id;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          [SIGNATURE_HEADER]: await signWebhook(secret, timestamp, body),
          [TIMESTAMP_HEADER]: String(timestamp),
          [EVENT_ID_HEADER]: id,
        },
        body,
        signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
      });
      await response.body?.cancel();
      return response.ok ? null : `HTTP ${response.status}`;
    } catch (error) {
      return String(error);
    }
  }
}
