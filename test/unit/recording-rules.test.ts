/**
 * The recordings' pure rules: byte ranges of a download (206 / 416 / the
 * whole file) and the status a stopped recording settles to from its files.
 */
import { describe, expect, it } from "vitest";
import { byteRange } from "../../worker/recordings/byte-range.ts";
import { NEVER_DELIVERED, settledStatus } from "../../worker/recordings/ledger-rules.ts";
import { recordingFileName, recordingFileNameFor } from "../../protocol/recordings.ts";

describe("byte ranges", () => {
  const partial = (offset: number, length: number, size: number) => ({
    kind: "partial",
    offset,
    length,
    contentRange: `bytes ${offset}-${offset + length - 1}/${size}`,
  });
  const unsatisfiable = (size: number) => ({ kind: "unsatisfiable", contentRange: `bytes */${size}` });

  it("no header, another unit, or several ranges: the whole file", () => {
    for (const header of [null, undefined, "", "  ", "items=0-1", "bytes=0-1,4-5"]) {
      expect(byteRange(header, 100), String(header)).toEqual({ kind: "full" });
    }
  });

  it("one range: first-last, open-ended, a suffix; the end is clamped to the file", () => {
    expect(byteRange("bytes=0-0", 100)).toEqual(partial(0, 1, 100));
    expect(byteRange("bytes=10-19", 100)).toEqual(partial(10, 10, 100));
    expect(byteRange("Bytes = 10-19", 100)).toEqual(partial(10, 10, 100));
    expect(byteRange("bytes=90-", 100)).toEqual(partial(90, 10, 100));
    expect(byteRange("bytes=90-1000", 100)).toEqual(partial(90, 10, 100));
    expect(byteRange("bytes=-1", 100)).toEqual(partial(99, 1, 100));
    expect(byteRange("bytes=-500", 100)).toEqual(partial(0, 100, 100));
  });

  it("a range that starts past the end, is backwards, empty or malformed: 416", () => {
    for (const header of [
      "bytes=100-",
      "bytes=100-200",
      "bytes=5-4",
      "bytes=-0",
      "bytes=-",
      "bytes=a-b",
      "bytes=1-2-3",
      "bytes=",
    ]) {
      expect(byteRange(header, 100), header).toEqual(unsatisfiable(100));
    }
    expect(byteRange("bytes=0-", 0)).toEqual(unsatisfiable(0));
    expect(byteRange("bytes=-5", 0)).toEqual(unsatisfiable(0));
    expect(byteRange("bytes=99999999999999999999-", 100)).toEqual(unsatisfiable(100));
  });
});

describe("a stopped recording's status", () => {
  const file = (name: string, status: "recording" | "uploading" | "ready" | "failed", reason?: string) => ({
    name,
    status,
    ...(reason === undefined ? {} : { reason }),
  });

  it("a running recording stays recording, whatever its files", () => {
    expect(settledStatus("recording", [file("001-a-webcam.webm", "failed", "x")])).toEqual({ status: "recording" });
  });

  it("stopping while any file is on its way; ready once all arrived", () => {
    const files = [file("001-a-webcam.webm", "ready"), file("002-b-webcam.webm", "uploading")];
    expect(settledStatus("stopping", files)).toEqual({ status: "stopping" });
    expect(settledStatus("stopping", [file("001-a-webcam.webm", "recording")])).toEqual({ status: "stopping" });
    expect(settledStatus("stopping", [file("001-a-webcam.webm", "ready")])).toEqual({ status: "ready" });
    expect(settledStatus("stopping", [])).toEqual({ status: "ready" });
  });

  it("failed once settled with a failed file, naming every failed file and why", () => {
    const files = [
      file("001-a-webcam.webm", "failed", NEVER_DELIVERED),
      file("002-b-webcam.webm", "ready"),
      file("003-c-webcam.webm", "failed"),
    ];
    expect(settledStatus("stopping", files)).toEqual({
      status: "failed",
      reason: `file 001-a-webcam.webm failed: ${NEVER_DELIVERED}; file 003-c-webcam.webm failed: no reason given`,
    });
    // A late file puts a settled recording back to stopping.
    expect(
      settledStatus("ready", [file("001-a-webcam.webm", "ready"), file("002-b-webcam.webm", "recording")]),
    ).toEqual({
      status: "stopping",
    });
  });
});

describe("file names the room gives", () => {
  it("always match the protocol's file name rule", () => {
    for (const user of ["ann", "Zoë", "日本", "a b/c\\d", "x".repeat(128), "-dash-", "ann_webcam"]) {
      for (const seq of [1, 42, 999, 1000, 123456]) {
        const name = recordingFileNameFor(seq, user, "webcam");
        expect(recordingFileName.safeParse(name).success, name).toBe(true);
      }
    }
  });
});
