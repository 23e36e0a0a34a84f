/**
 * A room's recordings (protocol/bridge.ts `record` / `stopRecording`): one
 * WebM file per recorded stream, written by a RecorderEndpoint fed by the
 * publisher's PassThrough (room-graph.ts), so the recorder hangs off the
 * media path without being part of it: publishing, subscribing and their
 * failures never wait for a recorder, and a recorder's failure never reaches
 * the publisher or the subscribers. It fails only its own file, reported to
 * the worker through the upload API's `/failed`.
 *
 * A file ends on `stopRecording`, and when its stream does: unpublish,
 * republish, releaseUser, releaseRoom, media lost. Ending is `stopAndWait`
 * (the media server finishes the file: index and duration written), then
 * release, then the upload queue takes it. The room keeps its pipeline until
 * its files have ended (`idle`), and releaseRoom waits for them before it
 * releases the pipeline, or the last file would be cut.
 *
 * Timing: `startOffsetMs` = when the media server began writing (its
 * `Recording` event, which waits for the first keyframe) − the recording's
 * `startedAt`; `durationMs` = from then to the stop.
 */
import { mkdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import type { z } from "zod";
import type { mediaCommandParams } from "../../protocol/bridge.ts";
import { RoomCode, rpcError } from "../../protocol/errors.ts";
import { RpcRequestError } from "../../protocol/rpc-peer.ts";
import type { Logger } from "../log.ts";
import { settledJournal } from "../recordings/files.ts";
import { type Journal, type RecordingPaths, writeJournal } from "../recordings/journal.ts";
import type { MediaKind, Pipeline, RecorderEndpoint, RecordingProfile } from "./media-server.ts";
import { endpointError, Superseded } from "./room-errors.ts";
import type { Publisher } from "./room-graph.ts";
import type { SentKinds } from "./sdp-kinds.ts";

type RecordParams = z.infer<(typeof mediaCommandParams)["record"]>;

/** Where recordings go: the files' place and the queue that delivers them. */
export interface RecordingSink {
  readonly paths: RecordingPaths;
  readonly uploads: {
    /** The file of this journal is being recorded (a scan must not take it for a cut file). */
    recording(journalPath: string): void;
    /** The file has ended: deliver it, or report it failed, as its journal says. */
    enqueue(journalPath: string): void;
  };
}

export interface RoomRecordingOptions {
  readonly room: string;
  /** Null: this bridge cannot record (`unavailable` says why). */
  readonly sink: RecordingSink | null;
  readonly unavailable?: string;
  readonly publisher: (user: string, stream: string) => Publisher | undefined;
  readonly pipeline: () => Pipeline | null;
  readonly log: Logger;
  /** A file has ended and its recorder is gone: the room may release its pipeline now. */
  readonly onSettled: () => void;
}

interface Ending {
  /** Why the file ends (logs; the note of a file that did not end cleanly). */
  readonly reason: string;
  /** Set when the file fails: the reason the worker gets. */
  readonly failure?: string;
}

interface Entry {
  readonly key: string;
  readonly params: RecordParams;
  readonly file: string;
  readonly journalPath: string;
  journal: Journal;
  /** Whether the journal is on disk (the queue can take the file). */
  journaled: boolean;
  /** This file's journal writes, one after another. */
  writes: Promise<void>;
  recorder: RecorderEndpoint | null;
  /** Bridge clock: `record()` answered, the media server began writing, the recorder stopped. */
  recordCalledAt: number | null;
  since: number | null;
  stoppedAt: number | null;
  setup: Promise<void>;
  ending: Ending | null;
  ended: Promise<void> | null;
}

/** Which profile records `kinds`, and the media types to connect (one connection each). */
export function recorderPlan(kinds: SentKinds): { profile: RecordingProfile; connect: MediaKind[] } | null {
  if (kinds.audio && kinds.video) return { profile: "WEBM", connect: ["AUDIO", "VIDEO"] };
  if (kinds.video) return { profile: "WEBM_VIDEO_ONLY", connect: ["VIDEO"] };
  if (kinds.audio) return { profile: "WEBM_AUDIO_ONLY", connect: ["AUDIO"] };
  return null;
}

export class RoomRecording {
  private readonly options: RoomRecordingOptions;
  private readonly entries = new Map<string, Entry>();
  /** Files that have ended here: a late or repeated `record` for one is a no-op. */
  private readonly ended = new Set<string>();

  constructor(options: RoomRecordingOptions) {
    this.options = options;
  }

  /** No file is being recorded or ending: the pipeline may go. */
  get idle(): boolean {
    return this.entries.size === 0;
  }

  /** Files being recorded (or ending) now. */
  get active(): number {
    return this.entries.size;
  }

  /** `record`: starts recording `user`'s stream into `file`; a file already recording (or ended) is a no-op. */
  async record(params: RecordParams): Promise<Record<string, never>> {
    const key = `${params.recording}/${params.file}`;
    if (this.entries.has(key) || this.ended.has(key)) return {};
    const sink = this.options.sink;
    if (!sink) {
      throw new RpcRequestError(
        rpcError(
          RoomCode.MEDIA_GENERIC,
          `This media bridge cannot record: ${this.options.unavailable ?? "no recordings directory"}`,
        ),
      );
    }
    const publisher = this.options.publisher(params.user, params.stream);
    const pipeline = this.options.pipeline();
    if (!publisher || !pipeline) throw endpointError(`${params.user} has no published media to record`);
    const plan = recorderPlan(publisher.kinds);
    if (!plan) throw endpointError(`${params.user}'s published stream sends neither audio nor video`);
    const journalPath = sink.paths.journal(params.recording, params.file);
    // A journal from an earlier run: that file is already on its way; never record over it.
    if (existsSync(journalPath)) {
      this.options.log.info("record: the file exists from an earlier run; left as it is", {
        room: this.options.room,
        file: params.file,
      });
      return {};
    }
    const entry: Entry = {
      key,
      params,
      file: sink.paths.file(params.recording, params.file),
      journalPath,
      journal: {
        version: 1,
        recording: params.recording,
        file: params.file,
        room: this.options.room,
        user: params.user,
        stream: params.stream,
        token: params.token,
        startedAt: params.startedAt,
        state: "recording",
      },
      journaled: false,
      writes: Promise.resolve(),
      recorder: null,
      recordCalledAt: null,
      since: null,
      stoppedAt: null,
      setup: Promise.resolve(),
      ending: null,
      ended: null,
    };
    this.entries.set(key, entry);
    entry.setup = this.setUp(entry, sink, pipeline, publisher, plan);
    try {
      await entry.setup;
    } catch (error) {
      // Ended meanwhile (stopRecording, the room released): that path reports the file.
      if (error instanceof Superseded) return {};
      const message = error instanceof Error ? error.message : String(error);
      void this.end(entry, { reason: "could not start", failure: `could not start recording: ${message}` });
      throw error;
    }
    this.options.log.info("recording a stream", {
      room: this.options.room,
      user: params.user,
      file: params.file,
      profile: plan.profile,
    });
    return {};
  }

  /** `stopRecording`: ends every file of `recording` here; resolves once each is complete on disk. */
  async stop(recording: string): Promise<Record<string, never>> {
    const mine = [...this.entries.values()].filter((entry) => entry.params.recording === recording);
    await Promise.all(mine.map((entry) => this.end(entry, { reason: "the recording was stopped" })));
    return {};
  }

  /** The user's streams end (release): their files end, in the background. */
  endUser(user: string, reason: string): void {
    for (const entry of this.entries.values()) if (entry.params.user === user) void this.end(entry, { reason });
  }

  /** One of the user's streams ends (unpublish, republish): its files end, in the background. */
  endStream(user: string, stream: string, reason: string): void {
    for (const entry of this.entries.values()) {
      if (entry.params.user === user && entry.params.stream === stream) void this.end(entry, { reason });
    }
  }

  /** Every file ends; resolves once each is complete (before the pipeline may go). */
  async endAll(reason: string): Promise<void> {
    await Promise.all([...this.entries.values()].map((entry) => this.end(entry, { reason })));
  }

  private async setUp(
    entry: Entry,
    sink: RecordingSink,
    pipeline: Pipeline,
    publisher: Publisher,
    plan: NonNullable<ReturnType<typeof recorderPlan>>,
  ): Promise<void> {
    const { recording, file } = entry.params;
    // Claimed before the journal exists, so a scan at start never takes it for a file cut by a crash.
    sink.uploads.recording(entry.journalPath);
    await mkdir(sink.paths.folder(recording), { recursive: true });
    await writeJournal(entry.journalPath, entry.journal);
    entry.journaled = true;
    this.check(entry);
    const recorder = await pipeline.createRecorderEndpoint({
      uri: sink.paths.mediaUri(recording, file),
      mediaProfile: plan.profile,
      stopOnEndOfStream: true,
    });
    entry.recorder = recorder;
    recorder.onRecording(() => {
      if (entry.since !== null || entry.ending) return;
      entry.since = Date.now();
      // Kept on disk, so a file cut by a crash still gets its place on the recording's timeline.
      void this.save(entry, { ...entry.journal, since: entry.since });
    });
    recorder.onStopped(() => {
      entry.stoppedAt ??= Date.now();
      if (!entry.ending) void this.end(entry, { reason: "the media server stopped the recorder (end of stream)" });
    });
    recorder.onError((description) => {
      this.options.log.warn("recorder error", { room: this.options.room, file, error: description });
      void this.end(entry, { reason: "recorder error", failure: `the media server's recorder failed: ${description}` });
    });
    this.check(entry);
    for (const kind of plan.connect) await publisher.passThrough.connect(recorder, kind);
    this.check(entry);
    await recorder.record();
    entry.recordCalledAt = Date.now();
  }

  private check(entry: Entry): void {
    if (entry.ending) throw new Superseded(`the file ended before recording started (${entry.ending.reason})`);
  }

  /** Ends the file once, whoever asks first; later calls share the first one's outcome. */
  private end(entry: Entry, ending: Ending): Promise<void> {
    if (entry.ended) return entry.ended;
    entry.ending = ending;
    entry.ended = this.finish(entry, ending)
      .catch((error: unknown) =>
        this.options.log.error("could not finish a recorded file", {
          room: this.options.room,
          file: entry.params.file,
          error: error instanceof Error ? error.message : String(error),
        }),
      )
      .finally(() => {
        this.entries.delete(entry.key);
        this.ended.add(entry.key);
        this.options.onSettled();
      });
    return entry.ended;
  }

  private async finish(entry: Entry, ending: Ending): Promise<void> {
    await entry.setup.catch(() => undefined);
    const recorder = entry.recorder;
    let note: string | undefined;
    if (recorder) {
      if (entry.recordCalledAt !== null) {
        try {
          await recorder.stopAndWait();
        } catch (error) {
          // The media server is gone or did not finish the file: it is uploaded as far as it got.
          const message = error instanceof Error ? error.message : String(error);
          note = `the recorder did not stop cleanly (${ending.reason}: ${message}): the file is cut where it ended`;
        }
      }
      entry.stoppedAt ??= Date.now();
      await recorder.release();
    }
    await entry.writes;
    if (!entry.journaled) {
      // The journal never reached the disk (the command failed with that error): nothing to deliver; drop the claim.
      this.options.sink?.uploads.enqueue(entry.journalPath);
      return;
    }
    const since = entry.since ?? entry.recordCalledAt;
    const journal = { ...entry.journal, ...(since === null ? {} : { since }) };
    const settled = ending.failure
      ? { ...journal, state: "failed" as const, reason: ending.failure }
      : await settledJournal(
          journal,
          entry.file,
          entry.stoppedAt ?? Date.now(),
          "no media reached the recorder (the stream sent nothing it could write)",
          note,
        );
    await writeJournal(entry.journalPath, settled);
    this.options.sink?.uploads.enqueue(entry.journalPath);
    this.options.log.info("recorded file ended", {
      room: this.options.room,
      file: entry.params.file,
      reason: ending.reason,
      state: settled.state,
      ...(settled.durationMs === undefined ? {} : { durationMs: settled.durationMs }),
    });
  }

  /** A journal update in the background, after the ones before it. */
  private save(entry: Entry, journal: Journal): Promise<void> {
    entry.journal = journal;
    entry.writes = entry.writes
      .then(() => writeJournal(entry.journalPath, journal))
      .catch((error: unknown) =>
        this.options.log.warn("could not update a recording journal", {
          room: this.options.room,
          file: entry.params.file,
          error: error instanceof Error ? error.message : String(error),
        }),
      );
    return entry.writes;
  }
}
