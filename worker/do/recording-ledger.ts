/**
 * The recording ledger (one object for the whole deployment): every
 * recording and its files, the source of truth of the REST API's reads.
 * Rooms purge their storage once empty, so what they recorded lives here:
 * rooms tell it what they decided (their outbox, in order, each op
 * idempotent), the upload API tells it what the bridge delivered.
 *
 * A file whose stream ended must be delivered within
 * RECORDING_UPLOAD_TIMEOUT_SECONDS; the alarm fails it otherwise, so a bridge
 * that died with its files never leaves a recording `stopping` forever.
 * Whether a recording ends `ready` or `failed` is worker/recordings/ledger-rules.ts;
 * that moment is a webhook (`recordingReady` / `recordingFailed`), sent
 * through the same outbox as the rooms' events.
 */
import { DurableObject } from "cloudflare:workers";
import type { Recording, RecordingFile } from "../../protocol/recordings.ts";
import type { LedgerOp } from "../core/types.ts";
import { settingsOf, type Env } from "../env.ts";
import { isUndelivered, NEVER_DELIVERED, settledStatus } from "../recordings/ledger-rules.ts";
import { LedgerStore } from "./recording-ledger-store.ts";
import { WebhookOutbox } from "./webhook-outbox.ts";

/** A file as the upload API needs it, or why the request is refused (an HTTP status and a sentence). */
export type FileOutcome =
  | { readonly ok: true; readonly recording: Recording; readonly file: RecordingFile }
  | { readonly ok: false; readonly status: 404 | 409; readonly error: string };

export type RemoveOutcome = "removed" | "unknown" | "recording";

/** The one ledger of the deployment. */
export function ledgerOf(env: Env): DurableObjectStub<RecordingLedger> {
  return env.LEDGER.get(env.LEDGER.idFromName("ledger"));
}

export class RecordingLedger extends DurableObject<Env> {
  readonly #store: LedgerStore;
  readonly #webhooks: WebhookOutbox;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#store = new LedgerStore(ctx.storage.sql);
    this.#webhooks = new WebhookOutbox(ctx.storage.sql, settingsOf(env).webhooks, (fields) =>
      console.log(JSON.stringify({ in: "recording ledger", ...fields })),
    );
  }

  /** What rooms decided, in their order; a retried batch changes nothing. */
  async apply(ops: readonly LedgerOp[]): Promise<void> {
    const touched = new Set<string>();
    const now = Date.now();
    for (const op of ops) {
      switch (op.op) {
        case "start":
          this.#store.insertRecording(op.id, op.room, op.name ?? null, op.startedAt);
          for (const file of op.files) this.#store.insertFile(op.id, file, null);
          break;
        case "addFile": {
          const row = this.#store.recordingRow(op.id);
          if (row === null) break;
          // A file heard of after the stop (a room's op overtaken by a reconciling stop) has ended too.
          this.#store.insertFile(op.id, op.file, row.status === "recording" ? null : (row.stopped_at ?? now));
          touched.add(op.id);
          break;
        }
        case "endFile":
          this.#store.endFile(op.id, op.name, op.at);
          break;
        case "failFile":
          this.#store.failFile(op.id, op.name, op.reason);
          touched.add(op.id);
          break;
        case "stop":
          this.#store.stopRecording(op.id, op.at);
          this.#store.endAllFiles(op.id, op.at);
          touched.add(op.id);
          break;
      }
    }
    for (const id of touched) this.#settle(id);
    this.#schedule();
  }

  async get(id: string): Promise<Recording | null> {
    return this.#store.get(id);
  }

  async list(room: string | null, limit: number): Promise<Recording[]> {
    return this.#store.list(room, limit);
  }

  /** The file `name` of recording `id`, if the ledger knows it. */
  async file(id: string, name: string): Promise<FileOutcome> {
    return this.#find(id, name);
  }

  /** The bridge starts uploading the file: refused once it was delivered or given up. */
  async uploading(id: string, name: string): Promise<FileOutcome> {
    const found = this.#find(id, name);
    if (!found.ok) return found;
    const refusal = undeliverable(found.file);
    if (refusal) return refusal;
    this.#store.uploading(id, name, Date.now());
    this.#schedule();
    return this.#find(id, name);
  }

  /** The file is in the bucket. Idempotent: a file already delivered stays as it is. */
  async delivered(
    id: string,
    name: string,
    done: { bytes: number; startOffsetMs: number; durationMs: number },
  ): Promise<FileOutcome> {
    const found = this.#find(id, name);
    if (!found.ok || found.file.status === "ready") return found;
    if (found.file.status === "failed") return undeliverable(found.file) ?? found;
    this.#store.delivered(id, name, done);
    this.#settle(id);
    this.#schedule();
    return this.#find(id, name);
  }

  /** The bridge cannot deliver the file. Idempotent; refused for a file already delivered. */
  async failed(id: string, name: string, reason: string): Promise<FileOutcome> {
    const found = this.#find(id, name);
    if (!found.ok || found.file.status === "failed") return found;
    if (found.file.status === "ready") {
      return { ok: false, status: 409, error: `File '${name}' of recording ${id} was already delivered` };
    }
    this.#store.failFile(id, name, reason);
    this.#settle(id);
    this.#schedule();
    return this.#find(id, name);
  }

  /** Forgets a recording that no longer records (its files are the caller's to delete from the bucket). */
  async remove(id: string): Promise<RemoveOutcome> {
    const row = this.#store.recordingRow(id);
    if (row === null) return "unknown";
    if (row.status === "recording") return "recording";
    this.#store.remove(id);
    this.#schedule();
    return "removed";
  }

  /** Fails the files nobody delivered in time, sends the webhooks that are due, and names the next wake-up. */
  override async alarm(): Promise<void> {
    const timeoutMs = settingsOf(this.env).recordingUploadTimeoutMs;
    for (const id of this.#store.failOverdue(Date.now() - timeoutMs, NEVER_DELIVERED)) this.#settle(id);
    await this.#webhooks.deliver();
    this.#schedule();
  }

  #find(id: string, name: string): FileOutcome {
    const recording = this.#store.get(id);
    if (recording === null) return { ok: false, status: 404, error: `Recording ${id} not found` };
    const file = recording.files.find((f) => f.name === name);
    if (!file) return { ok: false, status: 404, error: `Recording ${id} has no file '${name}'` };
    return { ok: true, recording, file };
  }

  /** A stopped recording's status follows its files; reaching `ready` or `failed` is a webhook. */
  #settle(id: string): void {
    const row = this.#store.recordingRow(id);
    if (row === null || row.status === "recording") return;
    const files = this.#store
      .fileRows(id)
      .map((f) => ({ name: f.name, status: f.status, ...(f.reason === null ? {} : { reason: f.reason }) }));
    const next = settledStatus(row.status, files);
    const reason = next.reason ?? null;
    if (next.status === row.status && reason === row.reason) return;
    this.#store.setRecordingStatus(id, next.status, reason);
    if (next.status === "ready" || next.status === "failed") {
      const type = next.status === "ready" ? "recordingReady" : "recordingFailed";
      const data = reason === null ? { recording: id } : { recording: id, reason };
      this.#webhooks.enqueue(row.room, [{ type, data }], Date.now());
      this.ctx.waitUntil(this.#webhooks.deliver().then(() => this.#schedule()));
    }
  }

  /** The alarm covers the earliest delivery deadline and the next webhook retry. */
  #schedule(): void {
    const ended = this.#store.earliestUndeliveredEnd();
    const deadline = ended === null ? null : ended + settingsOf(this.env).recordingUploadTimeoutMs;
    let at: number | null = null;
    for (const t of [deadline, this.#webhooks.nextAt()]) if (t !== null && (at === null || t < at)) at = t;
    if (at === null) void this.ctx.storage.deleteAlarm();
    else void this.ctx.storage.setAlarm(Math.max(at, Date.now() + 1));
  }
}

/** Why a file cannot be uploaded (any more), or null when it can. */
function undeliverable(file: RecordingFile): FileOutcome | null {
  if (isUndelivered(file.status)) return null;
  if (file.status === "ready") return { ok: false, status: 409, error: `File '${file.name}' was already delivered` };
  return { ok: false, status: 409, error: `File '${file.name}' was given up: ${file.reason ?? "it failed"}` };
}
