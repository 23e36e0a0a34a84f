/**
 * The room object's recording glue, kept out of room-object.ts: its
 * internal endpoints for the admin REST API (`/recordings/start`,
 * `/recordings/stop`), the grant a client's `startRecording` needs (an id
 * and an upload token, signed asynchronously before the core runs), and the
 * bridge's refusal of a `record` as a core input. The decisions themselves
 * are the core's (worker/core/recording.ts).
 */
import * as z from "zod";
import type { MediaCommand } from "../../protocol/bridge.ts";
import type { RpcError } from "../../protocol/errors.ts";
import { type Recording, signUploadToken } from "../../protocol/recordings.ts";
import { splitStreamId } from "../../protocol/room.ts";
import { startRefusal } from "../core/recording.ts";
import type { ActiveRecording, Input, RecordingGrant, RoomState } from "../core/types.ts";
import { settingsOf, type Env } from "../env.ts";
import { newRecordingId, recordingUnavailable } from "../recordings/availability.ts";

export interface RecordingRoomHost {
  readonly env: Env;
  state(): RoomState | null;
  run(input: Input): void;
  /** Sends the ledger outbox; true once the ledger has everything. */
  flushLedger(): Promise<boolean>;
}

/** Bodies of the internal endpoints (the worker validated the public ones). */
const startBody = z.object({ name: z.string().optional() });
const stopBody = z.object({ id: z.string() });

/** What `/recordings/stop` answers the worker. */
export const roomStopResponse = z.object({ stopped: z.boolean() });

/** `/recordings/start` (201 with the recording) and `/recordings/stop` (`{stopped}`). */
export async function recordingEndpoint(host: RecordingRoomHost, path: string, request: Request): Promise<Response> {
  const raw: unknown = await request.json().catch(() => null);
  if (path === "/recordings/stop") {
    const body = stopBody.safeParse(raw);
    if (!body.success) return Response.json({ error: "malformed stop request" }, { status: 400 });
    const running = host.state()?.recording;
    if (running?.id !== body.data.id) return Response.json({ stopped: false });
    host.run({ type: "recording", action: { kind: "stop", id: body.data.id } });
    await host.flushLedger();
    return Response.json({ stopped: true });
  }
  if (path !== "/recordings/start") return Response.json({ error: "unknown recording action" }, { status: 404 });
  const body = startBody.safeParse(raw);
  if (!body.success) return Response.json({ error: "malformed start request" }, { status: 400 });
  if (!occupied(host.state())) return roomNotFound(host.state());
  const unavailable = recordingUnavailable(host.env);
  if (unavailable !== null) return Response.json({ error: `recordings are disabled: ${unavailable}` }, { status: 503 });
  const granted = await signedRecording(host.env);
  // The room may have changed while the token was signed: check and start in one turn.
  const state = host.state();
  if (!occupied(state)) return roomNotFound(state);
  const refusal = startRefusal(state);
  if (refusal)
    return Response.json({ error: refusal.message }, { status: refusal.kind === "alreadyRecording" ? 409 : 422 });
  const name = body.data.name;
  host.run({ type: "recording", action: { kind: "start", ...granted, ...(name === undefined ? {} : { name }) } });
  const started = host.state()?.recording;
  if (!started) return Response.json({ error: "the recording did not start" }, { status: 500 });
  // The ledger is the source of REST reads: a GET right after this answer must find the recording.
  await host.flushLedger();
  return Response.json(startedRecording(state.room, name, started), { status: 201 });
}

/** The grant of a client's `startRecording`: a new id and its upload token, or why there is none. */
export async function recordingGrant(env: Env): Promise<RecordingGrant> {
  // The core refuses before it reads the grant when clients may not record: sign nothing for it.
  if (!settingsOf(env).room.recording?.fromClients) return { unavailable: "recording from clients is disabled" };
  const unavailable = recordingUnavailable(env);
  if (unavailable !== null) return { unavailable };
  return signedRecording(env);
}

/** The bridge refused a command: a `record` refused fails its file (other refusals are only logged). */
export function refusalInput(command: MediaCommand, error: RpcError): Input | null {
  if (command.op !== "record") return null;
  return { type: "recordingRefused", recording: command.recording, file: command.file, reason: error.message };
}

async function signedRecording(env: Env): Promise<{ id: string; token: string }> {
  const secret = settingsOf(env).bridgeSecret;
  if (secret === null) throw new Error("recordingUnavailable() lets no recording start without BRIDGE_SECRET");
  const id = newRecordingId();
  return { id, token: await signUploadToken(secret, id) };
}

/** A room exists while someone has a seat in it (as for the moderation API). */
function occupied(state: RoomState | null): state is RoomState {
  return state !== null && state.participants.size > 0;
}

function roomNotFound(state: RoomState | null): Response {
  return Response.json({ error: `Room '${state?.room ?? ""}' not found` }, { status: 404 });
}

/** The recording as the ledger shows it right after its start (every file being recorded). */
function startedRecording(room: string, name: string | undefined, started: ActiveRecording): Recording {
  return {
    id: started.id,
    room,
    ...(name === undefined ? {} : { name }),
    status: "recording",
    startedAt: new Date(started.startedAt).toISOString(),
    files: Object.entries(started.files)
      .map(([streamId, file]) => ({
        name: file,
        ...splitStreamId(streamId),
        status: "recording" as const,
        bytes: 0,
        startOffsetMs: 0,
        durationMs: 0,
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
  };
}
