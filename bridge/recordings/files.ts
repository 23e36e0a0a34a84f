/**
 * What the bridge can tell about a recorded file without decoding it (no
 * ffprobe on a bridge host): whether it is a WebM that holds media, and the
 * metadata its journal gets once it ends.
 */
import { open, stat } from "node:fs/promises";
import type { Journal } from "./journal.ts";

/** EBML header, the first bytes of every Matroska/WebM file. */
const EBML_MAGIC = Buffer.from([0x1a, 0x45, 0xdf, 0xa3]);
/** A Cluster element: the muxer wrote at least one block of media. */
const CLUSTER_ID = Buffer.from([0x1f, 0x43, 0xb6, 0x75]);
const CHUNK = 256 * 1024;

export interface FileFacts {
  readonly bytes: number;
  /** The file starts as a WebM and has at least one cluster of media. */
  readonly hasMedia: boolean;
  readonly modifiedMs: number;
}

/** Size, last write and whether the file holds media; a missing file is 0 bytes without media. */
export async function inspectFile(path: string): Promise<FileFacts> {
  let size: number;
  let modifiedMs: number;
  try {
    const facts = await stat(path);
    size = facts.size;
    modifiedMs = Math.round(facts.mtimeMs);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { bytes: 0, hasMedia: false, modifiedMs: 0 };
    throw error;
  }
  return { bytes: size, hasMedia: size > 0 && (await holdsMedia(path)), modifiedMs };
}

/** Streams through the file (never all of it in memory) until the first Cluster. */
async function holdsMedia(path: string): Promise<boolean> {
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.alloc(CHUNK + CLUSTER_ID.length);
    const first = await handle.read(buffer, 0, EBML_MAGIC.length, 0);
    if (first.bytesRead < EBML_MAGIC.length || !buffer.subarray(0, EBML_MAGIC.length).equals(EBML_MAGIC)) return false;
    // Each read keeps the last bytes of the one before, so an id split across two reads is found.
    let carried = 0;
    let position = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, carried, CHUNK, position);
      if (bytesRead === 0) return false;
      const filled = carried + bytesRead;
      if (buffer.subarray(0, filled).includes(CLUSTER_ID)) return true;
      position += bytesRead;
      carried = Math.min(CLUSTER_ID.length - 1, filled);
      buffer.copy(buffer, 0, filled - carried, filled);
    }
  } finally {
    await handle.close();
  }
}

/**
 * The journal of a file that has ended: `ready` with its metadata when it
 * holds media, else `failed` with `noMedia` as the reason. `endMs` is when
 * it ended (bridge clock); `note` says how, for a file that did not end
 * cleanly (it is uploaded as it is).
 */
export async function settledJournal(
  journal: Journal,
  path: string,
  endMs: number,
  noMedia: string,
  note?: string,
): Promise<Journal> {
  const facts = await inspectFile(path);
  if (!facts.hasMedia) return { ...journal, state: "failed", reason: noMedia };
  const since = journal.since ?? journal.startedAt;
  return {
    ...journal,
    state: "ready",
    bytes: facts.bytes,
    startOffsetMs: Math.max(0, since - journal.startedAt),
    durationMs: Math.max(0, endMs - since),
    ...(note === undefined ? {} : { reason: note }),
  };
}
