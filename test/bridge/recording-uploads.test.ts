/**
 * The delivery of recorded files (bridge/recordings/): the upload queue
 * against a local stand-in of the worker's upload API — multipart in 8 MiB
 * parts streamed from disk, a restart in the middle of an upload resumed
 * from the journal (same upload id, only the missing parts), retries on
 * 503/429/no answer, `/failed` on a 403, files cut by a crash mid-recording,
 * and journals that are never half-written.
 */
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../../bridge/log.ts";
import { inspectFile } from "../../bridge/recordings/files.ts";
import {
  type Journal,
  readJournal,
  RecordingPaths,
  scanJournals,
  writeJournal,
} from "../../bridge/recordings/journal.ts";
import { RecordingUploads } from "../../bridge/recordings/uploads.ts";
import { UPLOAD_PART_BYTES } from "../../protocol/recordings.ts";
import { waitUntil } from "./helpers/fake-worker.ts";
import { UploadServer } from "./helpers/upload-server.ts";

const WAIT_MS = 30_000;
const RECORDING = "rec_uploadtest01";
const TOKEN = "upload-token-for-rec_uploadtest01";
const FAST = { minMs: 20, maxMs: 100 };

let dir: string;
let server: UploadServer;
let paths: RecordingPaths;
const queues: RecordingUploads[] = [];
const logLines: string[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "bridge-recording-uploads-"));
  paths = new RecordingPaths(dir, dir);
  server = await UploadServer.start();
  server.tokens.set(RECORDING, TOKEN);
  logLines.length = 0;
});

afterEach(async () => {
  await Promise.all(queues.splice(0).map((queue) => queue.stop()));
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function queue(options: { keepLocal?: boolean; cutQuietMs?: number } = {}): RecordingUploads {
  const uploads = new RecordingUploads({
    dir,
    workerUrl: server.url,
    keepLocal: options.keepLocal ?? false,
    ...(options.cutQuietMs === undefined ? {} : { cutQuietMs: options.cutQuietMs }),
    backoff: FAST,
    log: createLogger({ level: "debug", sink: (line) => logLines.push(line) }),
  });
  queues.push(uploads);
  return uploads;
}

/** Bytes that pass the bridge's "holds media" check: a WebM header, then a cluster, then `size` in all. */
function webmLike(size: number): Buffer {
  const data = randomBytes(size);
  Buffer.from([0x1a, 0x45, 0xdf, 0xa3]).copy(data, 0);
  Buffer.from([0x1f, 0x43, 0xb6, 0x75]).copy(data, 64);
  return data;
}

function baseJournal(file: string, overrides: Partial<Journal> = {}): Journal {
  return {
    version: 1,
    recording: RECORDING,
    file,
    room: "room-a",
    user: "alice",
    stream: "webcam",
    token: TOKEN,
    startedAt: 1_700_000_000_000,
    state: "ready",
    ...overrides,
  };
}

/** A finished file and its `ready` journal on disk, as a room leaves them. */
async function finishedFile(file: string, data: Buffer, overrides: Partial<Journal> = {}): Promise<string> {
  await mkdir(paths.folder(RECORDING), { recursive: true });
  await writeFile(paths.file(RECORDING, file), data);
  const journalPath = paths.journal(RECORDING, file);
  await writeJournal(
    journalPath,
    baseJournal(file, { bytes: data.length, startOffsetMs: 1500, durationMs: 5000, ...overrides }),
  );
  return journalPath;
}

describe("recording uploads (bridge/recordings) against a local upload API", () => {
  it("uploads a file in 8 MiB parts streamed from disk, completes it with its metadata, then deletes the file and its journal", async () => {
    const data = webmLike(2 * UPLOAD_PART_BYTES + 1_500_000);
    const journalPath = await finishedFile("001-alice-webcam.webm", data);
    const uploads = queue();
    uploads.enqueue(journalPath);
    expect(uploads.pending).toBe(1);
    await uploads.whenIdle();

    expect(server.partRequests().map((request) => [request.path.split("/").pop(), request.bytes])).toEqual([
      ["1", UPLOAD_PART_BYTES],
      ["2", UPLOAD_PART_BYTES],
      ["3", 1_500_000],
    ]);
    expect(server.completed).toHaveLength(1);
    const [done] = server.completed;
    expect(done?.file).toBe("001-alice-webcam.webm");
    expect(done?.data.equals(data)).toBe(true);
    expect(done?.body).toMatchObject({ bytes: data.length, startOffsetMs: 1500, durationMs: 5000 });
    expect(done?.body.parts.map((part) => part.part)).toEqual([1, 2, 3]);
    expect(existsSync(journalPath)).toBe(false);
    expect(existsSync(paths.file(RECORDING, "001-alice-webcam.webm"))).toBe(false);
    // The recording's folder went with its last file.
    expect(existsSync(paths.folder(RECORDING))).toBe(false);
    expect(uploads.pending).toBe(0);
  });

  it("keeps the local file after delivery with RECORDINGS_KEEP_LOCAL", async () => {
    const data = webmLike(200_000);
    const journalPath = await finishedFile("002-alice-webcam.webm", data);
    const uploads = queue({ keepLocal: true });
    uploads.enqueue(journalPath);
    await uploads.whenIdle();
    expect(server.completed).toHaveLength(1);
    expect(existsSync(journalPath)).toBe(false);
    expect(readFileSync(paths.file(RECORDING, "002-alice-webcam.webm")).equals(data)).toBe(true);
  });

  it("uploads two files at a time, whatever the number waiting", async () => {
    server.partDelayMs = 150;
    const journals = [];
    for (let index = 1; index <= 5; index++) {
      journals.push(await finishedFile(`02${index}-ann-webcam.webm`, webmLike(20_000)));
    }
    const uploads = queue();
    for (const journal of journals) uploads.enqueue(journal);
    expect(uploads.pending).toBe(5);
    await uploads.whenIdle();
    expect(server.completed).toHaveLength(5);
    expect(server.maxPartsInFlight).toBe(2);
  });

  it("resumes after a crash mid-upload from the journal: the same upload id, only the parts not yet confirmed", async () => {
    const data = webmLike(2 * UPLOAD_PART_BYTES + 4096);
    const journalPath = await finishedFile("003-bob-webcam.webm", data);
    // The first bridge never hears back about part 2, and stops (a crash, as far as the journal knows).
    server.intercept = (route, match) => (route === "part" && match.part === 2 ? "hold" : undefined);
    const first = queue();
    first.enqueue(journalPath);
    await waitUntil(() => server.partRequests().length === 1, WAIT_MS, "part 1");
    await waitUntil(
      async () => {
        const read = await readJournal(journalPath);
        return read.ok && read.journal.upload?.parts.length === 1;
      },
      WAIT_MS,
      "part 1 in the journal",
    );
    await first.stop();
    const read = await readJournal(journalPath);
    if (!read.ok) throw new Error(read.problem);
    const uploadId = read.journal.upload?.uploadId;
    expect(uploadId).toBeDefined();
    expect(read.journal.state).toBe("ready");

    // A new bridge over the same directory.
    server.intercept = undefined;
    const second = queue();
    expect(await second.resumeFromDisk()).toBe(1);
    await second.whenIdle();
    expect(server.requests.filter((request) => request.path.endsWith("/uploads"))).toHaveLength(1);
    const parts = server.partRequests().filter((request) => request.status === 200);
    expect(parts.map((request) => request.path.split("/").pop())).toEqual(["1", "2", "3"]);
    expect(parts.every((request) => request.path.includes(`/uploads/${uploadId}/parts/`))).toBe(true);
    expect(server.completed).toHaveLength(1);
    expect(server.completed[0]?.uploadId).toBe(uploadId);
    expect(server.completed[0]?.data.equals(data)).toBe(true);
  });

  it("starts the upload again when the worker no longer knows the journal's upload id", async () => {
    const data = webmLike(UPLOAD_PART_BYTES + 10);
    await finishedFile("004-bob-webcam.webm", data, {
      upload: { uploadId: "forgotten-upload", parts: [{ part: 1, etag: "old" }] },
    });
    const uploads = queue();
    await uploads.resumeFromDisk();
    await uploads.whenIdle();
    expect(server.requests.find((request) => request.path.includes("forgotten-upload"))?.status).toBe(404);
    expect(server.completed).toHaveLength(1);
    expect(server.completed[0]?.data.equals(data)).toBe(true);
    expect(server.completed[0]?.uploadId).not.toBe("forgotten-upload");
    expect(server.failures).toEqual([]);
  });

  it("retries 503, 429 and a dropped connection with backoff, then delivers", async () => {
    const data = webmLike(300_000);
    const journalPath = await finishedFile("005-carol-webcam.webm", data);
    const faults = [
      { route: "create", status: 503 },
      { route: "create", status: 429 },
      { route: "part", status: 503 },
      { route: "complete", status: 502 },
    ];
    server.intercept = (route) => {
      const index = faults.findIndex((fault) => fault.route === route);
      if (index < 0) return undefined;
      const [fault] = faults.splice(index, 1);
      return fault ? { status: fault.status } : undefined;
    };
    const uploads = queue();
    uploads.enqueue(journalPath);
    await uploads.whenIdle();
    expect(faults).toEqual([]);
    expect(server.completed).toHaveLength(1);
    expect(server.completed[0]?.data.equals(data)).toBe(true);
    expect(server.failures).toEqual([]);
    const retries = logLines.filter((line) => line.includes("trying again"));
    expect(retries.length).toBe(4);

    // No answer at all (the worker unreachable): retried too, until it is back.
    const journal2 = await finishedFile("006-carol-webcam.webm", webmLike(1000));
    const unreachable = new RecordingUploads({
      dir,
      workerUrl: "http://127.0.0.1:1",
      keepLocal: false,
      backoff: FAST,
      log: createLogger({ level: "debug", sink: (line) => logLines.push(line) }),
    });
    queues.push(unreachable);
    unreachable.enqueue(journal2);
    await waitUntil(
      () => logLines.filter((line) => line.includes("no answer from the worker")).length >= 2,
      WAIT_MS,
      "retries of an unreachable worker",
    );
    expect(unreachable.pending).toBe(1);
    await unreachable.stop();
    expect(existsSync(journal2)).toBe(true);
  });

  it("gives a file up on a 403 and reports it through /failed with the reason; the journal and the file go", async () => {
    const data = webmLike(100_000);
    const journalPath = await finishedFile("007-dan-webcam.webm", data);
    server.intercept = (route) =>
      route === "part" ? { status: 403, body: JSON.stringify({ error: "recording closed" }) } : undefined;
    const uploads = queue();
    uploads.enqueue(journalPath);
    await uploads.whenIdle();
    expect(server.completed).toEqual([]);
    expect(server.failures).toHaveLength(1);
    expect(server.failures[0]).toMatchObject({ recording: RECORDING, file: "007-dan-webcam.webm" });
    expect(server.failures[0]?.reason).toMatch(/upload part 1: the worker answered 403.*recording closed/);
    expect(existsSync(journalPath)).toBe(false);
    expect(existsSync(paths.file(RECORDING, "007-dan-webcam.webm"))).toBe(false);
    // Given up at once: one try, no retry.
    expect(server.partRequests()).toHaveLength(1);
  });

  it("uploads a file cut by a crash mid-recording as it is, once nothing writes to it any more, when it holds media; reports one without media failed", async () => {
    // Its last write half a second ago: a media server that outlived the bridge may still be writing it.
    const since = Date.now() - 6500;
    const startedAt = since - 2000;
    // A file with media, whose journal still says "recording": the bridge died while KMS wrote it.
    await mkdir(paths.folder(RECORDING), { recursive: true });
    const cut = webmLike(50_000);
    const cutFile = paths.file(RECORDING, "008-erin-webcam.webm");
    writeFileSync(cutFile, cut);
    const lastWrite = new Date(since + 6000);
    utimesSync(cutFile, lastWrite, lastWrite);
    await writeJournal(
      paths.journal(RECORDING, "008-erin-webcam.webm"),
      baseJournal("008-erin-webcam.webm", { state: "recording", startedAt, since }),
    );
    // One that never got media (KMS writes nothing until the first keyframe).
    writeFileSync(paths.file(RECORDING, "009-erin-screen.webm"), "");
    await writeJournal(
      paths.journal(RECORDING, "009-erin-screen.webm"),
      baseJournal("009-erin-screen.webm", { state: "recording", startedAt }),
    );

    const uploads = queue({ cutQuietMs: 1500 });
    const resumed = Date.now();
    expect(await uploads.resumeFromDisk()).toBe(2);
    await uploads.whenIdle();
    // Taken once it had been quiet for 1.5 s (it was last written 0.5 s before).
    expect(Date.now() - resumed).toBeGreaterThanOrEqual(900);
    expect(server.completed).toHaveLength(1);
    expect(server.completed[0]?.file).toBe("008-erin-webcam.webm");
    expect(server.completed[0]?.data.equals(cut)).toBe(true);
    // Its place on the timeline from the journal; its length up to the file's last write.
    expect(server.completed[0]?.body).toMatchObject({ startOffsetMs: 2000, durationMs: 6000, bytes: cut.length });
    expect(server.failures).toEqual([
      {
        recording: RECORDING,
        file: "009-erin-screen.webm",
        reason: "the bridge stopped while recording and the file holds no media",
      },
    ]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("leaves a file that a room is recording right now alone, whatever a scan finds", async () => {
    await mkdir(paths.folder(RECORDING), { recursive: true });
    writeFileSync(paths.file(RECORDING, "010-fay-webcam.webm"), webmLike(1000));
    const journalPath = paths.journal(RECORDING, "010-fay-webcam.webm");
    await writeJournal(journalPath, baseJournal("010-fay-webcam.webm", { state: "recording" }));
    const uploads = queue();
    uploads.recording(journalPath);
    await uploads.resumeFromDisk();
    await uploads.whenIdle();
    expect(server.requests).toEqual([]);
    expect(existsSync(journalPath)).toBe(true);
  });

  it("writes journals atomically: readers never see half of one, a writer's leftover is cleaned up, a corrupt journal is left alone", async () => {
    const journalPath = await finishedFile("011-gus-webcam.webm", webmLike(1000));
    // Many rewrites of a large journal (many parts), read concurrently: each read is a whole journal.
    const parts = Array.from({ length: 2000 }, (_, index) => ({
      part: index + 1,
      etag: randomBytes(16).toString("hex"),
    }));
    let reads = 0;
    let writing = true;
    const reader = (async () => {
      while (writing) {
        const read = await readJournal(journalPath);
        if (!read.ok) throw new Error(`a reader saw a broken journal: ${read.problem}`);
        reads += 1;
      }
    })();
    for (let round = 1; round <= 40; round++) {
      await writeJournal(
        journalPath,
        baseJournal("011-gus-webcam.webm", {
          bytes: 1000,
          upload: { uploadId: "u", parts: parts.slice(0, round * 50) },
        }),
      );
    }
    writing = false;
    await reader;
    expect(reads).toBeGreaterThan(0);

    // A crash between writing the temporary journal and renaming it: the old journal stands; the leftover goes.
    const leftover = `${journalPath}.999999.deadbeef.tmp`;
    writeFileSync(leftover, '{"version":1,"recor');
    const corrupt = paths.journal(RECORDING, "012-gus-webcam.webm");
    writeFileSync(corrupt, "{ not json");
    expect(await scanJournals(dir)).toEqual([journalPath, corrupt].sort());
    expect(existsSync(leftover)).toBe(false);
    // The journal holds the upload token: only the bridge's user reads it.
    expect(statSync(journalPath).mode & 0o777).toBe(0o600);

    server.intercept = undefined;
    const uploads = queue();
    await uploads.resumeFromDisk();
    await uploads.whenIdle();
    expect(server.failures).toEqual([]);
    expect(existsSync(corrupt)).toBe(true);
    expect(logLines.some((line) => line.includes("unreadable recording journal left alone"))).toBe(true);
  });

  it("tells a WebM with media from an empty or foreign file without decoding it", async () => {
    await mkdir(paths.folder(RECORDING), { recursive: true });
    const file = (name: string, data: Buffer | string) => {
      const path = paths.file(RECORDING, name);
      writeFileSync(path, data);
      return path;
    };
    // The cluster id split across two of the reader's 256 KiB reads.
    const split = Buffer.alloc(256 * 1024 + 100);
    Buffer.from([0x1a, 0x45, 0xdf, 0xa3]).copy(split, 0);
    Buffer.from([0x1f, 0x43, 0xb6, 0x75]).copy(split, 256 * 1024 - 2);
    expect((await inspectFile(file("a.webm", split))).hasMedia).toBe(true);
    expect((await inspectFile(file("b.webm", ""))).hasMedia).toBe(false);
    // A header and no cluster: the muxer started but no frame was written.
    expect((await inspectFile(file("c.webm", Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0, 0, 0])))).hasMedia).toBe(false);
    expect((await inspectFile(file("d.webm", "not a webm at all, though 1F43B675"))).hasMedia).toBe(false);
    expect(await inspectFile(paths.file(RECORDING, "missing.webm"))).toMatchObject({ bytes: 0, hasMedia: false });
  });
});
