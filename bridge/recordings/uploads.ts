/**
 * Delivers finished recordings to the worker, one file per job, at most
 * `concurrency` (2) files at a time for the whole bridge, each one's parts
 * in order. A job is driven by the file's journal (journal.ts), which it
 * updates after every step, so a bridge restarted at any point carries on:
 * the same upload id and only the parts not yet confirmed, or a new upload
 * when the worker no longer knows the old one.
 *
 * Failures: no answer, 5xx, 408 and 429 are retried with the project's
 * backoff (the job gives its slot to the next file while it waits); any
 * other 4xx gives the file up, reported to the worker through `/failed`
 * with the reason. A file that was still being recorded when the bridge
 * stopped is uploaded as it is if it holds media, otherwise reported failed,
 * once nothing has written to it for a while (a media server that outlived
 * the bridge may still be writing it until its stream times out).
 * After delivery (or the report) the journal goes, and the file too unless
 * RECORDINGS_KEEP_LOCAL.
 */
import { rm, rmdir } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { MAX_UPLOAD_PARTS, UPLOAD_PART_BYTES } from "../../protocol/recordings.ts";
import { type BackoffOptions, backoffDelay } from "../../protocol/backoff.ts";
import type { Logger } from "../log.ts";
import { inspectFile, settledJournal } from "./files.ts";
import { type Journal, readJournal, RecordingPaths, scanJournals, writeJournal } from "./journal.ts";
import { type FetchLike, UploadApi, UploadError } from "./upload-api.ts";

export interface RecordingUploadsOptions {
  /** RECORDINGS_DIR. */
  readonly dir: string;
  readonly workerUrl: string;
  /** RECORDINGS_KEEP_LOCAL: keep each file after its delivery. */
  readonly keepLocal: boolean;
  readonly log: Logger;
  /** Files uploaded at once. Default 2. */
  readonly concurrency?: number;
  /** Between tries of a file after a transient failure. Default 1 s doubling to 60 s. */
  readonly backoff?: BackoffOptions;
  /** Bound of one HTTP call (a part's upload included). Default 5 min. */
  readonly requestTimeoutMs?: number;
  /** Part size; the contract's UPLOAD_PART_BYTES unless a test needs another. */
  readonly partBytes?: number;
  /** A file cut mid-recording is taken once it has not changed for this long. Default 10 s. */
  readonly cutQuietMs?: number;
  readonly fetch?: FetchLike;
}

export const DEFAULT_UPLOAD_BACKOFF: BackoffOptions = { minMs: 1000, maxMs: 60_000 };

interface Job {
  readonly path: string;
  /** Transient failures in a row. */
  attempt: number;
  /** Not to run before this (epoch ms): waiting out a backoff. */
  notBefore: number;
  /** The upload was started over once already in this run (the worker had forgotten it). */
  restarted: boolean;
}

/** The job ran into something only a later try can fix. */
class RetryLater extends Error {}

const DEFAULT_CUT_QUIET_MS = 10_000;

export class RecordingUploads {
  private readonly options: RecordingUploadsOptions;
  private readonly log: Logger;
  private readonly paths: RecordingPaths;
  private readonly waiting = new Map<string, Job>();
  private readonly active = new Set<string>();
  /** Enqueued again while running: run once more afterwards. */
  private readonly again = new Set<string>();
  /** Journals of files this process is recording now: not cut files, whatever a scan finds. */
  private readonly live = new Set<string>();
  private readonly stopper = new AbortController();
  private readonly running = new Set<Promise<void>>();
  private readonly idleWaiters = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;

  constructor(options: RecordingUploadsOptions) {
    this.options = options;
    this.log = options.log.child({ component: "recording-uploads" });
    this.paths = new RecordingPaths(options.dir, options.dir);
  }

  /** Files waiting for, or in, delivery. */
  get pending(): number {
    return this.waiting.size + this.active.size;
  }

  /** A room began recording into the file of this journal: the file is not to be touched until `enqueue`. */
  recording(journalPath: string): void {
    this.live.add(journalPath);
  }

  /** The file of the journal at `journalPath` has ended: deliver it (or report it failed). */
  enqueue(journalPath: string): void {
    this.live.delete(journalPath);
    this.add(journalPath);
  }

  private add(journalPath: string): void {
    if (this.stopper.signal.aborted) return;
    if (this.active.has(journalPath)) {
      this.again.add(journalPath);
      return;
    }
    if (!this.waiting.has(journalPath)) {
      this.waiting.set(journalPath, { path: journalPath, attempt: 0, notBefore: 0, restarted: false });
    }
    this.pump();
  }

  /** At start: every journal left on disk (uploads cut by a restart, files cut mid-recording). */
  async resumeFromDisk(): Promise<number> {
    const journals = await scanJournals(this.options.dir);
    for (const path of journals) this.add(path);
    if (journals.length)
      this.log.info("resuming recording deliveries left by an earlier run", { files: journals.length });
    return journals.length;
  }

  /** Resolves when nothing is waiting or running (tests, shutdown). */
  whenIdle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.add(resolve));
  }

  /** Stops at once: calls in flight are aborted, journals stay for the next start. */
  async stop(): Promise<void> {
    this.stopper.abort();
    clearTimeout(this.timer);
    this.waiting.clear();
    await Promise.allSettled([...this.running]);
  }

  private pump(): void {
    clearTimeout(this.timer);
    if (this.stopper.signal.aborted) return;
    const limit = this.options.concurrency ?? 2;
    const now = Date.now();
    for (const job of [...this.waiting.values()]) {
      if (this.active.size >= limit) break;
      if (job.notBefore > now) continue;
      this.waiting.delete(job.path);
      this.active.add(job.path);
      const run = this.run(job).finally(() => {
        this.running.delete(run);
        this.active.delete(job.path);
        if (this.again.delete(job.path)) this.add(job.path);
        this.pump();
        if (this.pending === 0) for (const wake of [...this.idleWaiters]) wake();
      });
      this.running.add(run);
    }
    // The next job waiting out its backoff.
    let next = Number.POSITIVE_INFINITY;
    for (const job of this.waiting.values()) next = Math.min(next, job.notBefore);
    if (Number.isFinite(next) && this.active.size < limit) {
      this.timer = setTimeout(() => this.pump(), Math.max(0, next - Date.now()));
      this.timer.unref();
    }
  }

  private async run(job: Job): Promise<void> {
    try {
      await this.deliver(job);
      job.attempt = 0;
    } catch (error) {
      if (this.stopper.signal.aborted) return;
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof RetryLater || (error instanceof UploadError && error.retryable)) {
        const delay = backoffDelay(job.attempt, this.options.backoff ?? DEFAULT_UPLOAD_BACKOFF);
        job.attempt += 1;
        job.notBefore = Date.now() + delay;
        this.waiting.set(job.path, job);
        const level = error instanceof RetryLater ? "info" : "warn";
        this.log[level]("recording delivery postponed; trying again", {
          journal: job.path,
          error: message,
          delayMs: delay,
        });
        return;
      }
      this.log.error("recording delivery failed", { journal: job.path, error: message });
    }
  }

  /** Moves the file's journal on until it is gone. */
  private async deliver(job: Job): Promise<void> {
    for (;;) {
      const read = await readJournal(job.path);
      if (!read.ok) {
        if (!read.missing)
          this.log.error("unreadable recording journal left alone", { journal: job.path, problem: read.problem });
        return;
      }
      const journal = read.journal;
      const file = this.paths.fileOfJournal(job.path);
      if (journal.recording !== basename(dirname(job.path)) || journal.file !== basename(file)) {
        this.log.error("recording journal does not match its place; left alone", { journal: job.path });
        return;
      }
      switch (journal.state) {
        case "recording": {
          if (this.live.has(job.path)) return;
          // Left by a run that stopped while the media server wrote the file: take it as it is, once it stopped growing.
          const facts = await inspectFile(file);
          const quietMs = this.options.cutQuietMs ?? DEFAULT_CUT_QUIET_MS;
          if (facts.bytes > 0 && Date.now() - facts.modifiedMs < quietMs) {
            throw new RetryLater("the file cut mid-recording is still being written; waiting until it stops");
          }
          await this.save(
            job.path,
            await settledJournal(
              journal,
              file,
              facts.modifiedMs,
              "the bridge stopped while recording and the file holds no media",
              "the bridge stopped while recording: the file is cut where it ended",
            ),
          );
          continue;
        }
        case "ready":
          await this.upload(job, journal, file);
          continue;
        case "failed":
          await this.reportFailed(job, journal);
          continue;
        case "done":
          await this.cleanUp(job.path, file);
          return;
      }
    }
  }

  private async upload(job: Job, journal: Journal, file: string): Promise<void> {
    const api = this.api(journal);
    const fail = (reason: string) => this.save(job.path, { ...journal, state: "failed", reason });
    const bytes = journal.bytes ?? 0;
    const facts = await inspectFile(file);
    if (bytes === 0 || facts.bytes !== bytes) {
      await fail(
        facts.bytes === 0 ? "the recorded file is gone or empty" : "the recorded file changed after it was finished",
      );
      return;
    }
    const partBytes = this.options.partBytes ?? UPLOAD_PART_BYTES;
    const count = Math.ceil(bytes / partBytes);
    if (count > MAX_UPLOAD_PARTS) {
      await fail(`the file is too large (${bytes} bytes, more than ${MAX_UPLOAD_PARTS} parts)`);
      return;
    }
    try {
      let current = journal;
      if (!current.upload) {
        current = { ...current, upload: { uploadId: await api.create(), parts: [] } };
        await this.save(job.path, current);
      }
      for (let part = 1; part <= count; part++) {
        const upload = current.upload;
        if (!upload) throw new Error("no upload");
        if (upload.parts.some((done) => done.part === part)) continue;
        const start = (part - 1) * partBytes;
        const length = Math.min(partBytes, bytes - start);
        const confirmed = await api.putPart(upload.uploadId, part, file, start, length);
        if (confirmed.part !== part)
          throw new UploadError(`part ${part}: the worker confirmed part ${confirmed.part}`, null, true);
        current = { ...current, upload: { ...upload, parts: [...upload.parts, confirmed] } };
        await this.save(job.path, current);
      }
      const upload = current.upload;
      if (!upload) throw new Error("no upload");
      await api.complete(upload.uploadId, {
        parts: [...upload.parts].sort((a, b) => a.part - b.part),
        bytes,
        startOffsetMs: current.startOffsetMs ?? 0,
        durationMs: current.durationMs ?? 0,
      });
      await this.save(job.path, { ...current, state: "done" });
      this.log.info("recording file delivered", {
        recording: journal.recording,
        file: journal.file,
        bytes,
        parts: count,
      });
    } catch (error) {
      if (!(error instanceof UploadError) || error.retryable) throw error;
      // 404 for an upload we started: the worker no longer has it (it expired, or was aborted). Start over, once.
      if (error.status === 404 && journal.upload && !job.restarted) {
        job.restarted = true;
        this.log.warn("the worker no longer knows this upload; starting it again", {
          recording: journal.recording,
          file: journal.file,
        });
        const { upload: _dropped, ...rest } = journal;
        await this.save(job.path, rest);
        return;
      }
      await fail(error.message);
    }
  }

  private async reportFailed(job: Job, journal: Journal): Promise<void> {
    const reason = journal.reason ?? "failed";
    try {
      await this.api(journal).failed(reason);
      this.log.warn("recording file reported failed", { recording: journal.recording, file: journal.file, reason });
    } catch (error) {
      if (!(error instanceof UploadError) || error.retryable) throw error;
      // Refused (say the token expired): nobody can be told; the worker's own deadline fails the recording.
      this.log.error("the worker refused the failure report of a recording file", {
        recording: journal.recording,
        file: journal.file,
        reason,
        error: error.message,
      });
    }
    await this.save(job.path, { ...journal, state: "done" });
  }

  private async cleanUp(journalPath: string, file: string): Promise<void> {
    if (!this.options.keepLocal) await rm(file, { force: true });
    await rm(journalPath, { force: true });
    // The recording's folder goes with its last file; anything else still there keeps it.
    await rmdir(dirname(journalPath)).catch(() => undefined);
  }

  private async save(path: string, journal: Journal): Promise<void> {
    // A stopping bridge leaves the journal as it is: the next start carries on from it.
    if (this.stopper.signal.aborted) throw new RetryLater("stopping");
    await writeJournal(path, journal);
  }

  private api(journal: Journal): UploadApi {
    return new UploadApi({
      workerUrl: this.options.workerUrl,
      recording: journal.recording,
      file: journal.file,
      token: journal.token,
      signal: this.stopper.signal,
      timeoutMs: this.options.requestTimeoutMs ?? 300_000,
      ...(this.options.fetch ? { fetch: this.options.fetch } : {}),
    });
  }
}
