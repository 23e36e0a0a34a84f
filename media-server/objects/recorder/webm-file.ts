import { type FileHandle, open } from "node:fs/promises";
import type { WebmOutput } from "werift/nonstandard";
import { childrenOf, EbmlId, element, float64, readHeader, sizeField, uint, voidElement } from "./ebml.ts";

/** Bytes gathered before one write: blocks come one per frame, far too small to write one by one. */
const FLUSH_BYTES = 256 * 1024;
/** A recording also reaches the disk at least this often, so a crash loses little. */
const FLUSH_INTERVAL_MS = 1000;
/** A Seek entry with an 8-byte position: the Void that holds the Cues' place in the index has this length. */
const SEEK_LENGTH = 21;
/** A Duration element with an 8-byte float. */
const DURATION_LENGTH = 11;
const UNKNOWN_SIZE = Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
const SEGMENT_ID = Buffer.from([0x18, 0x53, 0x80, 0x67]);
/** A cluster as werift writes it: a 4-byte id and an 8-byte unknown size, which is patched in place. */
const CLUSTER_HEADER_LENGTH = 12;

function seekEntry(id: number, position: number): Buffer {
  return element(EbmlId.Seek, element(EbmlId.SeekID, uint(id)), element(EbmlId.SeekPosition, uint(position, 8)));
}

interface OpenCluster {
  /** File offset of the cluster. */
  readonly position: number;
  /** Its timecode, in ms. */
  readonly time: number;
  /** Whether its first block of the cue track has been seen (only that block can make it a seek point). */
  decided: boolean;
}

interface CuePoint {
  readonly time: number;
  readonly clusterPosition: number;
}

/**
 * A WebM file written from werift's muxer output (its `WebmBase` callbacks).
 * werift writes the tracks, clusters and blocks, but it leaves a live
 * stream's file: unknown sizes, no seek index, and cues whose offsets assume
 * its own header. This file keeps werift's tracks, clusters and blocks as
 * they are and frames them as matroskamux frames KMS's recordings: a SeekHead
 * pointing at Info, Tracks and Cues, and, once the recording ends, the
 * duration, the cues and every size written in place. Until then the file is
 * a valid live WebM (sizes unknown), so a crash still leaves something a
 * player reads.
 */
export class WebmFile {
  private readonly handle: FileHandle;
  private readonly cueTrack: number;
  private readonly onFailure: (error: Error) => void;
  private readonly timer: NodeJS.Timeout;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** File offset of the next byte handed to `append`. */
  private position = 0;
  private writes: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private layout: { segmentDataStart: number; durationAt: number; cuesSeekAt: number } | undefined;
  /** File offsets of the clusters, whose sizes are written at the end (unless werift framed one otherwise: left unknown). */
  private readonly clusters: Array<{ position: number; patchable: boolean }> = [];
  private cluster: OpenCluster | undefined;
  private readonly cues: CuePoint[] = [];
  private lastBlockTime = 0;
  private durationMs: number | undefined;
  private finished = false;

  private constructor(handle: FileHandle, cueTrack: number, onFailure: (error: Error) => void) {
    this.handle = handle;
    this.cueTrack = cueTrack;
    this.onFailure = onFailure;
    this.timer = setInterval(() => this.flush(), FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  /**
   * Creates (or empties) the file now, as KMS does on `record()`.
   * `cueTrack` is the track whose keyframes are seek points: video when recorded, else audio.
   */
  static async create(path: string, cueTrack: number, onFailure: (error: Error) => void): Promise<WebmFile> {
    return new WebmFile(await open(path, "w"), cueTrack, onFailure);
  }

  /** One output of werift's muxer, in order. */
  take(output: WebmOutput): void {
    if (this.finished) return;
    const bytes = output.saveToFile;
    if (output.kind === "initial" && bytes) this.header(bytes);
    else if (output.kind === "cluster" && bytes) this.startCluster(bytes);
    else if (output.kind === "block" && bytes) this.block(bytes);
    // werift's own cues point into its header's layout, not this one's: ours are written instead.
    else if (output.eol) this.durationMs = output.eol.duration;
  }

  /** Writes the cues, the duration and every size, then closes the file; rejects if any write failed. */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.timer);
    const layout = this.layout;
    if (layout) {
      const cuesAt = this.position;
      this.append(this.cuesElement(layout.segmentDataStart));
      this.flush();
      const end = this.position;
      const patches: Array<[number, Buffer]> = [
        [layout.segmentDataStart - 8, sizeField(end - layout.segmentDataStart, 8)],
        [layout.durationAt, element(EbmlId.Duration, float64(this.durationMs ?? this.lastBlockTime))],
        [layout.cuesSeekAt, seekEntry(EbmlId.Cues, cuesAt - layout.segmentDataStart)],
      ];
      this.clusters.forEach(({ position, patchable }, index) => {
        const next = this.clusters[index + 1]?.position ?? cuesAt;
        if (patchable) patches.push([position + 4, sizeField(next - position - CLUSTER_HEADER_LENGTH, 8)]);
      });
      for (const [at, bytes] of patches) this.enqueue(() => this.handle.write(bytes, 0, bytes.length, at));
    }
    this.flush();
    await this.writes;
    await this.handle.close().catch(() => undefined);
    if (this.failure) throw this.failure;
  }

  /** werift's header (EBML header, then a segment with an empty SeekHead, Info, Tracks), reframed. */
  private header(werift: Buffer): void {
    const ebml = readHeader(werift, 0);
    const ebmlEnd = ebml.dataStart + (ebml.size ?? 0);
    const segment = readHeader(werift, ebmlEnd);
    const tracks = childrenOf(werift, segment.dataStart, werift.length).find((child) => child.id === EbmlId.Tracks);
    if (!tracks || tracks.size === undefined) throw new Error("werift's WebM header has no Tracks");
    const tracksBytes = werift.subarray(tracks.start, tracks.dataStart + tracks.size);
    const info = element(
      EbmlId.Info,
      element(EbmlId.TimecodeScale, uint(1_000_000)),
      element(EbmlId.MuxingApp, Buffer.from("werift")),
      element(EbmlId.WritingApp, Buffer.from("embedded media server")),
      voidElement(DURATION_LENGTH),
    );
    const seekHeadOf = (infoAt: number, tracksAt: number) =>
      element(
        EbmlId.SeekHead,
        seekEntry(EbmlId.Info, infoAt),
        seekEntry(EbmlId.Tracks, tracksAt),
        voidElement(SEEK_LENGTH),
      );
    const seekHeadLength = seekHeadOf(0, 0).length;
    const seekHead = seekHeadOf(seekHeadLength, seekHeadLength + info.length);
    const prefix = Buffer.concat([werift.subarray(0, ebmlEnd), SEGMENT_ID]);
    const segmentDataStart = prefix.length + UNKNOWN_SIZE.length;
    this.layout = {
      segmentDataStart,
      durationAt: segmentDataStart + seekHead.length + info.length - DURATION_LENGTH,
      cuesSeekAt: segmentDataStart + seekHead.length - SEEK_LENGTH,
    };
    this.append(Buffer.concat([prefix, UNKNOWN_SIZE, seekHead, info, tracksBytes]));
  }

  private startCluster(bytes: Buffer): void {
    const cluster = readHeader(bytes, 0);
    const timecode = readHeader(bytes, cluster.dataStart);
    const time = timecode.id === EbmlId.Timecode ? bytes.readUIntBE(timecode.dataStart, timecode.size ?? 1) : 0;
    this.clusters.push({
      position: this.position,
      patchable: cluster.dataStart === CLUSTER_HEADER_LENGTH && cluster.size === undefined,
    });
    this.cluster = { position: this.position, time, decided: false };
    this.append(bytes);
  }

  private block(bytes: Buffer): void {
    const cluster = this.cluster;
    if (cluster) {
      const block = readHeader(bytes, 0);
      // SimpleBlock data: track number (a one-byte vint for our two tracks), relative time, flags.
      const track = (bytes[block.dataStart] ?? 0) & 0x7f;
      const time = cluster.time + bytes.readInt16BE(block.dataStart + 1);
      const keyframe = ((bytes[block.dataStart + 3] ?? 0) & 0x80) !== 0;
      this.lastBlockTime = Math.max(this.lastBlockTime, time);
      if (!cluster.decided && track === this.cueTrack) {
        cluster.decided = true;
        if (keyframe) this.cues.push({ time, clusterPosition: cluster.position });
      }
    }
    this.append(bytes);
  }

  private cuesElement(segmentDataStart: number): Buffer {
    return element(
      EbmlId.Cues,
      ...this.cues.map((cue) =>
        element(
          EbmlId.CuePoint,
          element(EbmlId.CueTime, uint(cue.time)),
          element(
            EbmlId.CueTrackPositions,
            element(EbmlId.CueTrack, uint(this.cueTrack)),
            element(EbmlId.CueClusterPosition, uint(cue.clusterPosition - segmentDataStart)),
          ),
        ),
      ),
    );
  }

  private append(bytes: Buffer): void {
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    this.position += bytes.length;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
  }

  private flush(): void {
    if (this.pendingBytes === 0) return;
    const data = Buffer.concat(this.pending);
    const at = this.position - data.length;
    this.pending = [];
    this.pendingBytes = 0;
    this.enqueue(() => this.handle.write(data, 0, data.length, at));
  }

  /** Writes run one after another; after the first failure the rest are skipped and the failure reported once. */
  private enqueue(write: () => Promise<unknown>): void {
    this.writes = this.writes.then(async () => {
      if (this.failure) return;
      try {
        await write();
      } catch (error) {
        this.failure = error instanceof Error ? error : new Error(String(error));
        this.onFailure(this.failure);
      }
    });
  }
}
