/**
 * The upload API the media bridge delivers recorded files through, mounted
 * at `/bridge/recordings` (README "Recordings"). Each file is an R2
 * multipart upload (key `recordings/<id>/<name>`): create it, send parts,
 * complete it; or report the file as failed. The bearer is the recording's
 * upload token (protocol/recordings.ts), which the bridge got with `record`:
 * it opens that recording's files and nothing else, and only files the
 * ledger knows. Repeating a completed upload's `complete` answers the file
 * as it is, so a bridge that restarts mid-upload can simply retry.
 */
import { type Context, Hono } from "hono";
import { describeIssues } from "../../protocol/jsonrpc.ts";
import {
  checkUploadToken,
  completeUploadBody,
  type createUploadResponse,
  fileFailedBody,
  MAX_UPLOAD_PART_BYTES,
  MAX_UPLOAD_PARTS,
  type RecordingFile,
  recordingFileName,
  recordingId,
  type uploadPartResponse,
} from "../../protocol/recordings.ts";
import { bearerToken } from "../../protocol/tokens/constant-time.ts";
import * as z from "zod";
import { ledgerOf } from "../do/recording-ledger.ts";
import { settingsOf, type Env } from "../env.ts";
import { jsonBody } from "../json-body.ts";
import { recordingUnavailable } from "./availability.ts";
import { fileKey } from "./bucket.ts";

type Ctx = Context<{ Bindings: Env }>;

export const recordingUploadApi = new Hono<{ Bindings: Env }>();

const partNumber = z.coerce.number().int().min(1).max(MAX_UPLOAD_PARTS);

/** The file an authorised request is about, or the refusal. */
type Target = { id: string; name: string; key: string; bucket: R2Bucket };

async function authorise(c: Ctx): Promise<Target | Response> {
  const secret = settingsOf(c.env).bridgeSecret;
  if (secret === null) {
    return c.json({ error: "media bridges are disabled: BRIDGE_SECRET is not configured" }, 503);
  }
  const id = recordingId.safeParse(c.req.param("id"));
  if (!id.success) return c.json({ error: "invalid recording id (rec_…)" }, 400);
  const name = recordingFileName.safeParse(c.req.param("name"));
  if (!name.success) return c.json({ error: "invalid file name (NNN-user-stream.webm)" }, 400);
  const token = bearerToken(c.req.header("Authorization"));
  if (token === null) return c.json({ error: "an upload token is required: Authorization: Bearer <token>" }, 401);
  const check = await checkUploadToken(secret, token, id.data);
  if (!check.ok) {
    // A valid token of another recording is authenticated but not allowed here.
    const forbidden = check.problem === "token is for another recording";
    return c.json({ error: `upload token refused: ${check.problem}` }, forbidden ? 403 : 401);
  }
  const bucket = c.env.RECORDINGS;
  if (!bucket) return c.json({ error: `recordings are disabled: ${recordingUnavailable(c.env)}` }, 503);
  return { id: id.data, name: name.data, key: fileKey(id.data, name.data), bucket };
}

/** `POST /:id/files/:name/uploads` → 201 `{uploadId}`. */
recordingUploadApi.post("/:id/files/:name/uploads", async (c) => {
  const target = await authorise(c);
  if (target instanceof Response) return target;
  const found = await ledgerOf(c.env).uploading(target.id, target.name);
  if (!found.ok) return c.json({ error: found.error }, found.status);
  const upload = await target.bucket.createMultipartUpload(target.key, {
    httpMetadata: { contentType: "video/webm" },
    customMetadata: { recording: target.id },
  });
  return c.json({ uploadId: upload.uploadId } satisfies z.infer<typeof createUploadResponse>, 201);
});

/** `PUT /:id/files/:name/uploads/:uploadId/parts/:part` (body: the part's bytes) → `{part, etag}`. */
recordingUploadApi.put("/:id/files/:name/uploads/:uploadId/parts/:part", async (c) => {
  const target = await authorise(c);
  if (target instanceof Response) return target;
  const part = partNumber.safeParse(c.req.param("part"));
  if (!part.success) return c.json({ error: `part must be a number from 1 to ${MAX_UPLOAD_PARTS}` }, 400);
  const declared = Number(c.req.header("Content-Length") ?? "0");
  if (declared > MAX_UPLOAD_PART_BYTES) return c.json({ error: partTooLarge() }, 413);
  const bytes = await c.req.arrayBuffer();
  if (bytes.byteLength > MAX_UPLOAD_PART_BYTES) return c.json({ error: partTooLarge() }, 413);
  if (bytes.byteLength === 0) return c.json({ error: "a part must not be empty" }, 400);
  const found = await ledgerOf(c.env).file(target.id, target.name);
  if (!found.ok) return c.json({ error: found.error }, found.status);
  const refusal = notUploadable(found.file);
  if (refusal) return c.json({ error: refusal }, 409);
  const upload = target.bucket.resumeMultipartUpload(target.key, c.req.param("uploadId"));
  try {
    const uploaded = await upload.uploadPart(part.data, bytes);
    return c.json({ part: uploaded.partNumber, etag: uploaded.etag } satisfies z.infer<typeof uploadPartResponse>);
  } catch (error) {
    const refusal = r2Refusal(error);
    return c.json({ error: `part ${part.data} refused: ${refusal.message}` }, refusal.status);
  }
});

/** `POST /:id/files/:name/uploads/:uploadId/complete` `{parts, bytes, startOffsetMs, durationMs}` → the file. */
recordingUploadApi.post("/:id/files/:name/uploads/:uploadId/complete", async (c) => {
  const target = await authorise(c);
  if (target instanceof Response) return target;
  const raw = await jsonBody(c.req.raw);
  if (!raw.ok) return c.json({ error: "the body must be JSON: {parts, bytes, startOffsetMs, durationMs}" }, 400);
  const body = completeUploadBody.safeParse(raw.value);
  if (!body.success) return c.json({ error: `invalid body: ${describeIssues(body.error)}` }, 400);
  const ledger = ledgerOf(c.env);
  const found = await ledger.file(target.id, target.name);
  if (!found.ok) return c.json({ error: found.error }, found.status);
  // Already delivered: a retry after a restart, answered as it is.
  if (found.file.status === "ready") return c.json(found.file satisfies RecordingFile);
  const refusal = notUploadable(found.file);
  if (refusal) return c.json({ error: refusal }, 409);
  let size: number;
  try {
    const upload = target.bucket.resumeMultipartUpload(target.key, c.req.param("uploadId"));
    const parts = body.data.parts.map((p) => ({ partNumber: p.part, etag: p.etag }));
    size = (await upload.complete(parts)).size;
  } catch (error) {
    // Completed by an earlier attempt whose answer was lost: the object is there.
    const head = await target.bucket.head(target.key);
    if (!head) {
      const refusal = r2Refusal(error);
      return c.json({ error: `could not complete the upload: ${refusal.message}` }, refusal.status);
    }
    size = head.size;
  }
  if (size !== body.data.bytes) {
    console.log(JSON.stringify({ msg: "uploaded size differs", recording: target.id, file: target.name, size }));
  }
  const { startOffsetMs, durationMs } = body.data;
  const done = await ledger.delivered(target.id, target.name, { bytes: size, startOffsetMs, durationMs });
  if (!done.ok) {
    // Deleted meanwhile: its object must not outlive it.
    if (done.status === 404) await target.bucket.delete(target.key);
    return c.json({ error: done.error }, done.status);
  }
  return c.json(done.file satisfies RecordingFile);
});

/** `POST /:id/files/:name/failed` `{reason}` → the file, failed. */
recordingUploadApi.post("/:id/files/:name/failed", async (c) => {
  const target = await authorise(c);
  if (target instanceof Response) return target;
  const raw = await jsonBody(c.req.raw);
  if (!raw.ok) return c.json({ error: 'the body must be JSON: {"reason": string}' }, 400);
  const body = fileFailedBody.safeParse(raw.value);
  if (!body.success) return c.json({ error: `invalid body: ${describeIssues(body.error)}` }, 400);
  const done = await ledgerOf(c.env).failed(target.id, target.name, body.data.reason);
  if (!done.ok) return c.json({ error: done.error }, done.status);
  return c.json(done.file satisfies RecordingFile);
});

function partTooLarge(): string {
  return `a part must be at most ${MAX_UPLOAD_PART_BYTES} bytes`;
}

/** Why parts cannot be sent for this file (any more), or null. */
function notUploadable(file: RecordingFile): string | null {
  if (file.status === "ready") return `File '${file.name}' was already delivered`;
  if (file.status === "failed") return `File '${file.name}' was given up: ${file.reason ?? "it failed"}`;
  return null;
}

/**
 * An R2 error as the bridge should read it: 404 when the multipart upload does not exist (expired,
 * aborted, never created: the bridge starts a new one), 502 for R2's own internal error (worth a
 * retry), 400 otherwise (wrong parts or etags: retrying the same request cannot help).
 */
function r2Refusal(error: unknown): { status: 400 | 404 | 502; message: string } {
  const message = error instanceof Error ? error.message : String(error);
  if (message.includes("(10024)")) return { status: 404, message };
  if (message.includes("(10001)")) return { status: 502, message };
  return { status: 400, message };
}
