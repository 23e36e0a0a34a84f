/**
 * The recordings' files, inside workerd with its simulated R2 (README
 * "Recordings"): the bridge's upload API end to end (multipart, a file over
 * 8 MiB in two parts), its refusals (tokens, names, unknown files, files
 * already delivered or given up), an idempotent complete, a reported
 * failure, the ledger's deadline for files never delivered; then the admin
 * side: downloads with Range requests, the manifest, deletion.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { recordingFile, UPLOAD_PART_BYTES } from "../../protocol/recordings.ts";
import { signUploadToken } from "../../protocol/recordings.ts";
import type { RecordingLedger } from "../../worker/do/recording-ledger.ts";
import { bridgeSecret, closeAll, SLACK_MS } from "./fake-bridge.ts";
import {
  api,
  bridgeCall,
  completeUpload,
  expireDeliveries,
  fileBytes,
  getRecording,
  ledgerStub,
  post,
  type RecordCommand,
  RecordedRoom,
  uploadFile,
  uploadPath,
} from "./recording-helpers.ts";

const TEST = { timeout: 4 * SLACK_MS };
const MiB = 1024 * 1024;

afterEach(closeAll);

/** A stopped recording of ann and bob in `room`, with the `record` commands the bridge got. */
async function stoppedRecording(room: string): Promise<{ id: string; ann: RecordCommand; bob: RecordCommand }> {
  const r = await RecordedRoom.open(room);
  await r.join("ann");
  await r.join("bob");
  await r.publish("ann");
  await r.publish("bob");
  const started = await post("/api/recordings", { room });
  expect(started.status).toBe(201);
  const ann = await r.record();
  const bob = await r.record();
  expect((await post(`/api/recordings/${ann.recording}/stop`)).status).toBe(200);
  return { id: ann.recording, ann, bob };
}

async function bytesOf(response: Response): Promise<Uint8Array> {
  return new Uint8Array(await response.arrayBuffer());
}

describe("upload API", () => {
  it(
    "delivers a 9 MiB file in two parts and a small one into R2; complete is idempotent; the recording becomes ready",
    TEST,
    async () => {
      const { id, ann, bob } = await stoppedRecording("up-e2e");
      const big = fileBytes(9 * MiB, 3);
      const done = await uploadFile(ann, big, UPLOAD_PART_BYTES, { startOffsetMs: 12, durationMs: 4321 });
      expect(done.status).toBe(200);
      const file = recordingFile.parse(await done.json());
      expect(file).toEqual({
        name: "001-ann-webcam.webm",
        user: "ann",
        stream: "webcam",
        status: "ready",
        bytes: 9 * MiB,
        startOffsetMs: 12,
        durationMs: 4321,
      });
      expect((await getRecording(id)).status).toBe("stopping");

      const stored = await env.RECORDINGS?.get(`recordings/${id}/001-ann-webcam.webm`);
      expect(stored?.size).toBe(9 * MiB);
      expect(stored?.httpMetadata?.contentType).toBe("video/webm");
      expect(new Uint8Array((await stored?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(big);

      // A bridge that restarted after completing retries: the same answer, nothing changes.
      const again = await completeUpload(ann, "an-upload-id-long-gone", [{ part: 1, etag: "x" }], big.length, {
        startOffsetMs: 99,
        durationMs: 99,
      });
      expect(again.status).toBe(200);
      expect(await again.json()).toEqual(file);

      expect((await uploadFile(bob, fileBytes(1000, 5), UPLOAD_PART_BYTES)).status).toBe(200);
      const ready = await getRecording(id);
      expect(ready.status).toBe("ready");
      expect(ready.reason).toBeUndefined();
      expect(ready.files.map((f) => [f.name, f.status, f.bytes])).toEqual([
        ["001-ann-webcam.webm", "ready", 9 * MiB],
        ["002-bob-webcam.webm", "ready", 1000],
      ]);
    },
  );

  it("a completed upload whose answer was lost completes again from what is in the bucket", TEST, async () => {
    const { ann } = await stoppedRecording("up-lost");
    const created = await bridgeCall(uploadPath(ann.recording, ann.file, "/uploads"), ann.token, { method: "POST" });
    const { uploadId } = (await created.json()) as { uploadId: string };
    const path = uploadPath(ann.recording, ann.file, `/uploads/${encodeURIComponent(uploadId)}/parts/1`);
    const part = (await (await bridgeCall(path, ann.token, { method: "PUT", body: fileBytes(10, 1) })).json()) as {
      part: number;
      etag: string;
    };
    // The object is completed in R2 behind the ledger's back (the worker died before telling it).
    await env.RECORDINGS?.resumeMultipartUpload(`recordings/${ann.recording}/${ann.file}`, uploadId).complete([
      { partNumber: part.part, etag: part.etag },
    ]);
    const retried = await completeUpload(ann, uploadId, [part], 10);
    expect(retried.status).toBe(200);
    expect(await retried.json()).toMatchObject({ status: "ready", bytes: 10 });
  });

  it(
    "refuses: no or bad token 401, another recording's 403, unknown files 404, bad names and bodies 400",
    TEST,
    async () => {
      const { id, ann } = await stoppedRecording("up-refuse");
      const create = (recording: string, name: string, token: string | null) =>
        bridgeCall(uploadPath(recording, name, "/uploads"), token, { method: "POST" });
      expect((await create(id, ann.file, null)).status).toBe(401);
      expect((await create(id, ann.file, "v1.garbage.token")).status).toBe(401);
      const other = await signUploadToken(bridgeSecret(), "rec_anotherrecording");
      const forbidden = await create(id, ann.file, other);
      expect(forbidden.status).toBe(403);
      expect(await forbidden.json()).toEqual({ error: "upload token refused: token is for another recording" });
      const expired = await signUploadToken(bridgeSecret(), id, Math.floor(Date.now() / 1000) - 2 * 86_400);
      expect((await create(id, ann.file, expired)).status).toBe(401);
      const unknownFile = await create(id, "009-zed-webcam.webm", ann.token);
      expect(unknownFile.status).toBe(404);
      expect(await unknownFile.json()).toEqual({ error: `Recording ${id} has no file '009-zed-webcam.webm'` });
      const unknownRecording = "rec_nosuchrecording";
      const tokenOfUnknown = await signUploadToken(bridgeSecret(), unknownRecording);
      expect((await create(unknownRecording, ann.file, tokenOfUnknown)).status).toBe(404);
      expect((await create(id, "ann.webm", ann.token)).status).toBe(400);
      expect((await create("rec_x", ann.file, ann.token)).status).toBe(400);

      const created = await create(id, ann.file, ann.token);
      const { uploadId } = (await created.json()) as { uploadId: string };
      expect((await getRecording(id)).files[0]?.status).toBe("uploading");
      const partPath = (part: string) =>
        uploadPath(id, ann.file, `/uploads/${encodeURIComponent(uploadId)}/parts/${part}`);
      for (const part of ["0", "10001", "one", "1.5"]) {
        expect((await bridgeCall(partPath(part), ann.token, { method: "PUT", body: "x" })).status, part).toBe(400);
      }
      expect((await bridgeCall(partPath("1"), ann.token, { method: "PUT", body: "" })).status).toBe(400);
      const bogus = uploadPath(id, ann.file, "/uploads/not-an-upload/parts/1");
      expect((await bridgeCall(bogus, ann.token, { method: "PUT", body: "x" })).status).toBe(404);
      const completePath = uploadPath(id, ann.file, `/uploads/${encodeURIComponent(uploadId)}/complete`);
      for (const body of [
        "{",
        JSON.stringify({ parts: [], bytes: 1, startOffsetMs: 0, durationMs: 0 }),
        JSON.stringify({ parts: [{ part: 1, etag: "e" }] }),
      ]) {
        const response = await bridgeCall(completePath, ann.token, { method: "POST", body });
        expect(response.status, body).toBe(400);
      }
      const wrongParts = await completeUpload(ann, uploadId, [{ part: 1, etag: "not-the-etag" }], 1);
      expect(wrongParts.status).toBe(400);
      expect(((await wrongParts.json()) as { error: string }).error).toContain("could not complete the upload");
    },
  );

  it(
    "a failure the bridge reports fails the file and the recording, naming the file; no upload after that",
    TEST,
    async () => {
      const { id, ann, bob } = await stoppedRecording("up-failed");
      expect((await uploadFile(bob, fileBytes(100, 1), UPLOAD_PART_BYTES)).status).toBe(200);
      const failedPath = uploadPath(id, ann.file, "/failed");
      expect((await bridgeCall(failedPath, ann.token, { method: "POST", body: "{}" })).status).toBe(400);
      const failed = await bridgeCall(failedPath, ann.token, {
        method: "POST",
        body: JSON.stringify({ reason: "the recorder crashed" }),
      });
      expect(failed.status).toBe(200);
      expect(await failed.json()).toMatchObject({ name: ann.file, status: "failed", reason: "the recorder crashed" });
      const recording = await getRecording(id);
      expect(recording.status).toBe("failed");
      expect(recording.reason).toBe("file 001-ann-webcam.webm failed: the recorder crashed");
      const retry = await bridgeCall(uploadPath(id, ann.file, "/uploads"), ann.token, { method: "POST" });
      expect(retry.status).toBe(409);
      const delivered = await bridgeCall(uploadPath(id, bob.file, "/failed"), bob.token, {
        method: "POST",
        body: JSON.stringify({ reason: "too late" }),
      });
      expect(delivered.status).toBe(409);
    },
  );

  it(
    "the ledger fails files not delivered RECORDING_UPLOAD_TIMEOUT_SECONDS after their stream ended",
    TEST,
    async () => {
      const { id, ann, bob } = await stoppedRecording("up-timeout");
      const recording = await getRecording(id);
      // The alarm is set for the deadline of the earliest undelivered file.
      const alarm = await runInDurableObject(ledgerStub(), (_i: RecordingLedger, state) => state.storage.getAlarm());
      const deadline = Date.parse(recording.stoppedAt ?? "") + 3600 * 1000;
      expect(alarm).toBeGreaterThanOrEqual(deadline - 5000);
      expect(alarm).toBeLessThanOrEqual(deadline);

      expect((await uploadFile(bob, fileBytes(100, 2), UPLOAD_PART_BYTES)).status).toBe(200);
      await expireDeliveries(id, 3599 * 1000);
      expect((await getRecording(id)).status).toBe("stopping");
      await expireDeliveries(id, 3601 * 1000);
      const failed = await getRecording(id);
      expect(failed.status).toBe("failed");
      expect(failed.files.map((f) => [f.name, f.status, f.reason])).toEqual([
        ["001-ann-webcam.webm", "failed", "the media bridge never delivered the file"],
        ["002-bob-webcam.webm", "ready", undefined],
      ]);
      expect(failed.reason).toBe("file 001-ann-webcam.webm failed: the media bridge never delivered the file");
      const late = await bridgeCall(uploadPath(id, ann.file, "/uploads"), ann.token, { method: "POST" });
      expect(late.status).toBe(409);
      expect(((await late.json()) as { error: string }).error).toContain("the media bridge never delivered the file");
    },
  );

  it("a file still being recorded has no deadline", TEST, async () => {
    const r = await RecordedRoom.open("up-running");
    await r.join("ann");
    await r.publish("ann");
    expect((await post("/api/recordings", { room: "up-running" })).status).toBe(201);
    const ann = await r.record();
    await runInDurableObject(ledgerStub(), async (instance: RecordingLedger) => instance.alarm());
    expect((await getRecording(ann.recording)).files[0]?.status).toBe("recording");
  });
});

describe("downloads, manifest, deletion", () => {
  it(
    "serves a file whole and by Range (206), refuses unsatisfiable ranges (416); the manifest lines files up",
    TEST,
    async () => {
      const { id, ann, bob } = await stoppedRecording("dl-ranges");
      const content = fileBytes(1000, 9);
      expect((await uploadFile(ann, content, UPLOAD_PART_BYTES, { startOffsetMs: 5, durationMs: 2000 })).status).toBe(
        200,
      );
      const path = `/api/recordings/${id}/files/${ann.file}`;

      const notReady = await api(`/api/recordings/${id}/files/${bob.file}`);
      expect(notReady.status).toBe(409);

      const whole = await api(path);
      expect(whole.status).toBe(200);
      expect(whole.headers.get("content-type")).toBe("video/webm");
      expect(whole.headers.get("accept-ranges")).toBe("bytes");
      expect(whole.headers.get("content-length")).toBe("1000");
      expect(await bytesOf(whole)).toEqual(content);

      const ranges: Array<[string, number, number]> = [
        ["bytes=0-99", 0, 99],
        ["bytes=900-", 900, 999],
        ["bytes=-10", 990, 999],
        ["bytes=995-5000", 995, 999],
        ["bytes=-5000", 0, 999],
      ];
      for (const [range, first, last] of ranges) {
        const response = await api(path, { headers: { Range: range } });
        expect(response.status, range).toBe(206);
        expect(response.headers.get("content-range"), range).toBe(`bytes ${first}-${last}/1000`);
        expect(response.headers.get("content-length"), range).toBe(String(last - first + 1));
        expect(await bytesOf(response), range).toEqual(content.slice(first, last + 1));
      }
      for (const range of ["bytes=1000-", "bytes=5-2", "bytes=abc", "bytes=-0", "bytes=-"]) {
        const response = await api(path, { headers: { Range: range } });
        expect(response.status, range).toBe(416);
        expect(response.headers.get("content-range"), range).toBe("bytes */1000");
        expect(((await response.json()) as { error: string }).error, range).toContain("cannot be served");
      }
      // Several ranges, or another unit: the whole file.
      for (const range of ["bytes=0-1,5-6", "items=0-1"]) {
        const response = await api(path, { headers: { Range: range } });
        expect(response.status, range).toBe(200);
        expect((await bytesOf(response)).length).toBe(1000);
      }

      const manifest = await api(`/api/recordings/${id}/files/manifest.json`);
      expect(manifest.status).toBe(200);
      const recording = await getRecording(id);
      expect(await manifest.json()).toEqual({
        id,
        room: "dl-ranges",
        startedAt: recording.startedAt,
        stoppedAt: recording.stoppedAt,
        files: [{ name: ann.file, user: "ann", stream: "webcam", bytes: 1000, startOffsetMs: 5, durationMs: 2000 }],
      });
    },
  );

  it("DELETE is 409 while recording; afterwards it removes the record and its objects", TEST, async () => {
    const r = await RecordedRoom.open("dl-delete");
    await r.join("ann");
    await r.publish("ann");
    const started = await post("/api/recordings", { room: "dl-delete" });
    const ann = await r.record();
    const id = ann.recording;
    expect(started.status).toBe(201);
    const busy = await api(`/api/recordings/${id}`, { method: "DELETE" });
    expect(busy.status).toBe(409);
    expect(((await busy.json()) as { error: string }).error).toContain("still recording");

    await post(`/api/recordings/${id}/stop`);
    expect((await uploadFile(ann, fileBytes(300, 4), UPLOAD_PART_BYTES)).status).toBe(200);
    expect((await getRecording(id)).status).toBe("ready");
    const deleted = await api(`/api/recordings/${id}`, { method: "DELETE" });
    expect(deleted.status).toBe(204);
    expect((await env.RECORDINGS?.list({ prefix: `recordings/${id}/` }))?.objects).toEqual([]);
    expect((await api(`/api/recordings/${id}`)).status).toBe(404);
    expect((await api(`/api/recordings/${id}/files/${ann.file}`)).status).toBe(404);
    expect((await api(`/api/recordings/${id}`, { method: "DELETE" })).status).toBe(404);
    const list = (await (await api("/api/recordings?room=dl-delete")).json()) as unknown[];
    expect(list).toEqual([]);
  });
});
