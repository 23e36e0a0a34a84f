/**
 * Recording, the room's side (README "Recordings"): individual mode, one
 * WebM file per live published stream. The room decides which files exist
 * and tells the bridge (`record`, `stopRecording`) and the recording ledger
 * (`ledger` effects); the bridge records and uploads, the ledger tracks
 * delivery. Pure, like the rest of the core.
 *
 * Files follow the streams, whatever input changed them: `followStreams`
 * runs after every input and compares the running recording's files with
 * who publishes now, so a publish, an unpublish, a forced unpublish, a leave,
 * an eviction or a media loss all start or end files the same way.
 */
import { RoomCode, rpcError } from "../../protocol/errors.ts";
import type { RequestId } from "../../protocol/jsonrpc.ts";
import { recordingFileNameFor } from "../../protocol/recordings.ts";
import { type RequestParams, splitStreamId, streamIdOf } from "../../protocol/room.ts";
import type { StepBuilder } from "./step.ts";
import type { Grant, LedgerFile, Participant, RecordingAction, RoomState } from "./types.ts";
import { hasLiveStream, liveStreams } from "./streams.ts";

export type StartRefusal =
  /** Nobody publishes: there is nothing to record. */
  | { readonly kind: "nothingToRecord"; readonly message: string }
  | { readonly kind: "alreadyRecording"; readonly running: string; readonly message: string };

/** Why a recording cannot start now, or null when it can (the admin REST API and clients share it). */
export function startRefusal(state: RoomState): StartRefusal | null {
  const running = state.recording;
  if (running) {
    const message = `Room '${state.room}' is already being recorded (recording ${running.id}); stop it first`;
    return { kind: "alreadyRecording", running: running.id, message };
  }
  if (![...state.participants.values()].some(hasLiveStream)) {
    return { kind: "nothingToRecord", message: `Room '${state.room}' has no published stream to record` };
  }
  return null;
}

/** Starts recording every live stream; the caller checked `startRefusal`. */
export function beginRecording(b: StepBuilder, start: { id: string; token: string; name?: string }): void {
  const now = b.ctx.now;
  const files: Record<string, string> = {};
  const ledgerFiles: LedgerFile[] = [];
  let seq = 0;
  for (const id of liveStreamIds(b.state)) {
    seq += 1;
    const file = fileOf(seq, id);
    files[id] = file.name;
    ledgerFiles.push(file);
  }
  b.state = { ...b.state, recording: { id: start.id, startedAt: now, token: start.token, seq, files } };
  // The ledger hears of the files before the bridge can deliver any of them.
  b.effects.push({
    kind: "ledger",
    op: {
      op: "start",
      id: start.id,
      room: b.state.room,
      ...(start.name === undefined ? {} : { name: start.name }),
      startedAt: now,
      files: ledgerFiles,
    },
  });
  for (const file of ledgerFiles) record(b, file);
  b.broadcast(null, { method: "recordingStarted", params: { id: start.id } });
}

/**
 * Stops the running recording, if any: the bridge ends and uploads every file, the ledger waits
 * for them, everyone is told. Runs before the room's media is released when it empties or closes.
 */
export function endRecording(b: StepBuilder): void {
  const running = b.state.recording;
  if (!running) return;
  b.state = { ...b.state, recording: null };
  b.media({ op: "stopRecording", recording: running.id });
  b.effects.push({ kind: "ledger", op: { op: "stop", id: running.id, at: b.ctx.now } });
  b.broadcast(null, { method: "recordingStopped", params: { id: running.id } });
}

/**
 * After every input: a stream that went live while recording gets a new file (the next number),
 * a file whose stream is gone has ended (the bridge ends it itself; the ledger starts waiting for
 * its delivery).
 */
export function followStreams(b: StepBuilder): void {
  const running = b.state.recording;
  if (!running || b.state.participants === b.initial.participants) return;
  const live = new Set(liveStreamIds(b.state));
  const files: Record<string, string> = {};
  let changed = false;
  for (const [id, name] of Object.entries(running.files)) {
    if (live.has(id)) files[id] = name;
    else {
      changed = true;
      b.effects.push({ kind: "ledger", op: { op: "endFile", id: running.id, name, at: b.ctx.now } });
    }
  }
  let seq = running.seq;
  const started: LedgerFile[] = [];
  for (const id of live) {
    if (id in files) continue;
    seq += 1;
    const file = { ...fileOf(seq, id), startOffsetMs: Math.max(0, b.ctx.now - running.startedAt) };
    files[id] = file.name;
    started.push(file);
    changed = true;
  }
  if (!changed) return;
  b.state = { ...b.state, recording: { ...running, seq, files } };
  for (const file of started) {
    b.effects.push({ kind: "ledger", op: { op: "addFile", id: running.id, file } });
    record(b, file);
  }
}

/** The bridge refused a `record`: that file fails (the publisher keeps its entry, so no new file is tried at once). */
export function recordingRefused(b: StepBuilder, recording: string, file: string, reason: string): void {
  b.effects.push({ kind: "ledger", op: { op: "failFile", id: recording, name: file, reason } });
}

/** The administrator's start or stop (the adapter checked `startRefusal` in the same turn). */
export function recordingAction(b: StepBuilder, action: RecordingAction): void {
  if (action.kind === "start") {
    if (startRefusal(b.state) === null) beginRecording(b, action);
    return;
  }
  if (b.state.recording?.id === action.id) endRecording(b);
}

/** A late joiner (or a resumed session) learns that the room is being recorded, right after its answer. */
export function announceRecording(b: StepBuilder, session: string): void {
  const running = b.state.recording;
  if (running) b.notify(session, { method: "recordingStarted", params: { id: running.id } });
}

/** `startRecording {name?}` from a participant → `{id}`. */
export function startRecording(
  b: StepBuilder,
  session: string,
  id: RequestId | null,
  p: RequestParams<"startRecording">,
  grant: Grant,
): void {
  const me = mayRecord(b, session, id);
  if (!me) return;
  const granted = grant.recording;
  if (!granted || "unavailable" in granted) {
    const why = granted?.unavailable ?? "the server did not prepare it";
    return b.fail(session, id, rpcError(RoomCode.GENERIC, `Recording is not available: ${why}`));
  }
  const refusal = startRefusal(b.state);
  if (refusal) return b.fail(session, id, rpcError(RoomCode.ROOM_GENERIC, refusal.message));
  beginRecording(b, { id: granted.id, token: granted.token, ...(p.name === undefined ? {} : { name: p.name }) });
  b.reply(session, id, { id: granted.id });
}

/** `stopRecording {}` from a participant → `{id}` of the recording it stopped. */
export function stopRecording(b: StepBuilder, session: string, id: RequestId | null): void {
  const me = mayRecord(b, session, id);
  if (!me) return;
  const running = b.state.recording;
  if (!running) {
    return b.fail(session, id, rpcError(RoomCode.ROOM_GENERIC, `Room '${b.state.room}' is not being recorded`));
  }
  endRecording(b);
  b.reply(session, id, { id: running.id });
}

/** The participant asking, when it may start and stop recordings; otherwise an error answer and undefined. */
function mayRecord(b: StepBuilder, session: string, id: RequestId | null): Participant | undefined {
  const me = b.member(session, id);
  if (!me) return undefined;
  const policy = b.ctx.config.recording;
  if (!policy?.fromClients) {
    const message =
      "Recording from the room is disabled on this server (ALLOW_RECORDING_FROM_CLIENTS); the administrator records through the REST API";
    b.fail(session, id, rpcError(RoomCode.GENERIC, message));
    return undefined;
  }
  if (policy.moderatorsOnly && me.role !== "moderator") {
    const message = "Only moderators can start or stop recordings (a join token with role 'moderator' grants it)";
    b.fail(session, id, rpcError(RoomCode.USER_GENERIC, message));
    return undefined;
  }
  return me;
}

/** Every live stream of the room (`<user>_<stream>`), in the participants' order, each one's webcam first. */
function liveStreamIds(state: RoomState): string[] {
  const ids: string[] = [];
  for (const p of state.participants.values())
    for (const stream of liveStreams(p)) ids.push(streamIdOf(p.user, stream));
  return ids;
}

function fileOf(seq: number, streamId: string): LedgerFile {
  const { user, stream } = splitStreamId(streamId);
  return { name: recordingFileNameFor(seq, user, stream), user, stream, startOffsetMs: 0 };
}

function record(b: StepBuilder, file: LedgerFile): void {
  const running = b.state.recording;
  if (!running) return;
  b.media({
    op: "record",
    recording: running.id,
    user: file.user,
    stream: file.stream,
    file: file.name,
    token: running.token,
    startedAt: running.startedAt,
  });
}
