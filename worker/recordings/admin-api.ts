/**
 * The recordings' admin REST API, mounted at `/api/recordings` (README
 * "Recordings"): start and stop a room's recording, read and list
 * recordings (from the ledger, which outlives rooms), download their files
 * from R2 (Range requests included) and the manifest, delete them. Every
 * route needs the admin token; every refusal is JSON `{error}`.
 */
import { Hono } from "hono";
import { describeIssues } from "../../protocol/jsonrpc.ts";
import {
  MANIFEST_FILE,
  type Recording,
  recordingFileName,
  recordingId,
  type recordingListResponse,
  type recordingManifest,
  startRecordingBody,
} from "../../protocol/recordings.ts";
import { name as roomName } from "../../protocol/room.ts";
import type * as z from "zod";
import { adminRefusal } from "../admin-auth.ts";
import { ROOM_NAME_HEADER } from "../do/room-object.ts";
import { ledgerOf } from "../do/recording-ledger.ts";
import { roomStopResponse } from "../do/recording-room.ts";
import type { Env } from "../env.ts";
import { jsonBody } from "../json-body.ts";
import { recordingUnavailable } from "./availability.ts";
import { deleteRecordingFiles, fileKey } from "./bucket.ts";
import { byteRange } from "./byte-range.ts";

/** The most recordings one listing returns (newest first). */
const LIST_LIMIT = 1000;

export const recordingAdminApi = new Hono<{ Bindings: Env }>();

recordingAdminApi.use("*", async (c, next) => {
  const refusal = adminRefusal(c);
  if (refusal) return refusal;
  await next();
});

function roomStub(env: Env, room: string) {
  return env.ROOM.get(env.ROOM.idFromName(room));
}

recordingAdminApi.post("/", async (c) => {
  const raw = await jsonBody(c.req.raw);
  if (!raw.ok) return c.json({ error: 'the body must be JSON: {"room": string, "name"?: string}' }, 400);
  const body = startRecordingBody.safeParse(raw.value);
  if (!body.success) return c.json({ error: `invalid body: ${describeIssues(body.error)}` }, 400);
  const room = roomName.safeParse(body.data.room);
  if (!room.success) return c.json({ error: `invalid room name: ${describeIssues(room.error)}` }, 400);
  const unavailable = recordingUnavailable(c.env);
  if (unavailable !== null) return c.json({ error: `recordings are disabled: ${unavailable}` }, 503);
  // The room decides (404 nobody there, 422 nothing published, 409 already recording, 201 started).
  return roomStub(c.env, room.data).fetch("https://room.internal/recordings/start", {
    method: "POST",
    headers: { [ROOM_NAME_HEADER]: room.data, "content-type": "application/json" },
    body: JSON.stringify(body.data.name === undefined ? {} : { name: body.data.name }),
  });
});

recordingAdminApi.get("/", async (c) => {
  const given = c.req.query("room");
  let room: string | null = null;
  if (given !== undefined) {
    const parsed = roomName.safeParse(given);
    if (!parsed.success) return c.json({ error: `query parameter 'room' must name a room` }, 400);
    room = parsed.data;
  }
  const list = await ledgerOf(c.env).list(room, LIST_LIMIT);
  return c.json(list satisfies z.infer<typeof recordingListResponse>);
});

recordingAdminApi.get("/:id", async (c) => {
  const id = recordingId.safeParse(c.req.param("id"));
  if (!id.success) return c.json({ error: "invalid recording id (rec_…)" }, 400);
  const found = await ledgerOf(c.env).get(id.data);
  if (!found) return c.json({ error: `Recording ${id.data} not found` }, 404);
  return c.json(found satisfies Recording);
});

/** Stops the recording; a recording that already stopped is answered as it is (idempotent). */
recordingAdminApi.post("/:id/stop", async (c) => {
  const id = recordingId.safeParse(c.req.param("id"));
  if (!id.success) return c.json({ error: "invalid recording id (rec_…)" }, 400);
  const ledger = ledgerOf(c.env);
  const found = await ledger.get(id.data);
  if (!found) return c.json({ error: `Recording ${id.data} not found` }, 404);
  if (found.status === "recording") {
    const response = await roomStub(c.env, found.room).fetch("https://room.internal/recordings/stop", {
      method: "POST",
      headers: { [ROOM_NAME_HEADER]: found.room, "content-type": "application/json" },
      body: JSON.stringify({ id: id.data }),
    });
    const answer = roomStopResponse.safeParse(await response.json().catch(() => null));
    if (!answer.success || !answer.data.stopped) {
      console.log(JSON.stringify({ msg: "stopped a recording its room no longer ran", recording: id.data }));
    }
    // Idempotent: the room's own `stop` (already sent, or still in its outbox) changes nothing after this.
    await ledger.apply([{ op: "stop", id: id.data, at: Date.now() }]);
  }
  return c.json((await ledger.get(id.data)) ?? found);
});

recordingAdminApi.delete("/:id", async (c) => {
  const id = recordingId.safeParse(c.req.param("id"));
  if (!id.success) return c.json({ error: "invalid recording id (rec_…)" }, 400);
  const bucket = c.env.RECORDINGS;
  if (!bucket) return c.json({ error: `recordings are disabled: ${recordingUnavailable(c.env)}` }, 503);
  // The record goes first, so no upload can land a new file after its objects were listed.
  const outcome = await ledgerOf(c.env).remove(id.data);
  if (outcome === "unknown") return c.json({ error: `Recording ${id.data} not found` }, 404);
  if (outcome === "recording") {
    return c.json({ error: `Recording ${id.data} is still recording: stop it first (POST …/stop)` }, 409);
  }
  await deleteRecordingFiles(bucket, id.data);
  return c.body(null, 204);
});

recordingAdminApi.get("/:id/files/:name", async (c) => {
  const id = recordingId.safeParse(c.req.param("id"));
  if (!id.success) return c.json({ error: "invalid recording id (rec_…)" }, 400);
  const name = c.req.param("name");
  const ledger = ledgerOf(c.env);
  if (name === MANIFEST_FILE) {
    const found = await ledger.get(id.data);
    if (!found) return c.json({ error: `Recording ${id.data} not found` }, 404);
    return c.json(manifestOf(found));
  }
  if (!recordingFileName.safeParse(name).success) {
    return c.json({ error: `'${name}' is not a recording file name (NNN-user-stream.webm or ${MANIFEST_FILE})` }, 400);
  }
  const found = await ledger.file(id.data, name);
  if (!found.ok) return c.json({ error: found.error }, found.status);
  if (found.file.status !== "ready") {
    return c.json({ error: `File '${name}' is not ready (it is ${found.file.status})` }, 409);
  }
  const bucket = c.env.RECORDINGS;
  if (!bucket) return c.json({ error: `recordings are disabled: ${recordingUnavailable(c.env)}` }, 503);
  const key = fileKey(id.data, name);
  const head = await bucket.head(key);
  if (!head) return c.json({ error: `File '${name}' is missing from the bucket` }, 404);
  const range = byteRange(c.req.header("Range"), head.size);
  const headers = new Headers({ "Content-Type": "video/webm", "Accept-Ranges": "bytes", ETag: head.httpEtag });
  if (range.kind === "unsatisfiable") {
    headers.set("Content-Range", range.contentRange);
    headers.set("Content-Type", "application/json");
    const error = `Range '${c.req.header("Range")}' cannot be served from ${head.size} bytes`;
    return new Response(JSON.stringify({ error }), { status: 416, headers });
  }
  const partial = range.kind === "partial";
  const object = await bucket.get(key, partial ? { range: { offset: range.offset, length: range.length } } : {});
  if (!object) return c.json({ error: `File '${name}' is missing from the bucket` }, 404);
  headers.set("Content-Length", String(partial ? range.length : head.size));
  if (partial) headers.set("Content-Range", range.contentRange);
  return new Response(object.body, { status: partial ? 206 : 200, headers });
});

/** What a player needs to line the delivered files up on the recording's timeline. */
function manifestOf(found: Recording): z.infer<typeof recordingManifest> {
  return {
    id: found.id,
    room: found.room,
    ...(found.name === undefined ? {} : { name: found.name }),
    startedAt: found.startedAt,
    ...(found.stoppedAt === undefined ? {} : { stoppedAt: found.stoppedAt }),
    files: found.files
      .filter((f) => f.status === "ready")
      .map(({ name, user, stream, bytes, startOffsetMs, durationMs }) => ({
        name,
        user,
        stream,
        bytes,
        startOffsetMs,
        durationMs,
      })),
  };
}
