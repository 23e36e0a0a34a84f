// Just enough EBML (the binary format under Matroska/WebM) to frame what
// werift's muxer writes: the segment header, the seek index, the cues and the
// sizes patched in when a recording ends. werift builds the tracks, clusters
// and blocks; these helpers never touch media data.

export const EbmlId = {
  Segment: 0x18538067,
  SeekHead: 0x114d9b74,
  Seek: 0x4dbb,
  SeekID: 0x53ab,
  SeekPosition: 0x53ac,
  Info: 0x1549a966,
  TimecodeScale: 0x2ad7b1,
  MuxingApp: 0x4d80,
  WritingApp: 0x5741,
  Duration: 0x4489,
  Tracks: 0x1654ae6b,
  Cluster: 0x1f43b675,
  Timecode: 0xe7,
  SimpleBlock: 0xa3,
  Cues: 0x1c53bb6b,
  CuePoint: 0xbb,
  CueTime: 0xb3,
  CueTrackPositions: 0xb7,
  CueTrack: 0xf7,
  CueClusterPosition: 0xf1,
  Void: 0xec,
} as const;

/** The largest size an 8-byte size field holds (all ones is reserved for "unknown"). */
const MAX_SIZE = 2 ** 56 - 2;

/** An element id as written: ids carry their own length marker, so their bytes are the number's. */
function idBytes(id: number): Buffer {
  const length = id > 0xffffff ? 4 : id > 0xffff ? 3 : id > 0xff ? 2 : 1;
  const bytes = Buffer.alloc(length);
  bytes.writeUIntBE(id, 0, length);
  return bytes;
}

/** A size as a variable-length integer, in `length` bytes (the fewest that fit when omitted). */
export function sizeField(size: number, length?: number): Buffer {
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_SIZE)
    throw new RangeError(`EBML size out of range: ${size}`);
  let bytes = length ?? 1;
  while (length === undefined && size >= 2 ** (7 * bytes) - 1) bytes += 1;
  if (size >= 2 ** (7 * bytes) - 1) throw new RangeError(`EBML size ${size} does not fit ${bytes} bytes`);
  const field = Buffer.alloc(bytes);
  // Written as a big-endian number with the length marker bit above it.
  let rest = size;
  for (let index = bytes - 1; index >= 0; index -= 1) {
    field[index] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  field[0] = (field[0] ?? 0) | (0x80 >> (bytes - 1));
  return field;
}

export function element(id: number, ...body: Buffer[]): Buffer {
  const data = Buffer.concat(body);
  return Buffer.concat([idBytes(id), sizeField(data.length), data]);
}

/** An unsigned integer element body, big-endian, in `length` bytes (the fewest that fit when omitted). */
export function uint(value: number, length?: number): Buffer {
  let bytes = length ?? 1;
  while (length === undefined && value >= 2 ** (8 * bytes)) bytes += 1;
  const body = Buffer.alloc(bytes);
  let rest = value;
  for (let index = bytes - 1; index >= 0; index -= 1) {
    body[index] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  return body;
}

export function float64(value: number): Buffer {
  const body = Buffer.alloc(8);
  body.writeDoubleBE(value);
  return body;
}

/** A Void element of exactly `totalLength` bytes: room kept for an element written later. */
export function voidElement(totalLength: number): Buffer {
  const dataLength = totalLength - 2;
  if (dataLength < 0 || dataLength >= 127) throw new RangeError(`cannot reserve ${totalLength} bytes with one Void`);
  return Buffer.concat([idBytes(EbmlId.Void), sizeField(dataLength, 1), Buffer.alloc(dataLength)]);
}

export interface EbmlHeader {
  readonly id: number;
  /** Offset of the element's first byte. */
  readonly start: number;
  /** Offset of its data. */
  readonly dataStart: number;
  /** Length of its data; undefined when the size is "unknown" (a live stream's segment or cluster). */
  readonly size: number | undefined;
}

/** Reads the id and size of the element at `offset`. */
export function readHeader(buffer: Buffer, offset: number): EbmlHeader {
  const first = buffer[offset];
  if (first === undefined || first === 0) throw new RangeError(`no EBML element at ${offset}`);
  const idLength = Math.clz32(first) - 23;
  const id = buffer.readUIntBE(offset, idLength);
  const sizeAt = offset + idLength;
  const sizeFirst = buffer[sizeAt];
  if (sizeFirst === undefined || sizeFirst === 0) throw new RangeError(`no EBML size at ${sizeAt}`);
  const sizeLength = Math.clz32(sizeFirst) - 23;
  let size = sizeFirst & (0xff >> sizeLength);
  let unknown = size === 0xff >> sizeLength;
  for (let index = 1; index < sizeLength; index += 1) {
    const byte = buffer[sizeAt + index] ?? 0;
    size = size * 256 + byte;
    unknown &&= byte === 0xff;
  }
  return { id, start: offset, dataStart: sizeAt + sizeLength, size: unknown ? undefined : size };
}

/** The elements directly inside `[start, end)`, which must all have known sizes. */
export function childrenOf(buffer: Buffer, start: number, end: number): EbmlHeader[] {
  const children: EbmlHeader[] = [];
  for (let offset = start; offset < end; ) {
    const child = readHeader(buffer, offset);
    if (child.size === undefined) throw new RangeError(`element ${child.id.toString(16)} at ${offset} has no size`);
    children.push(child);
    offset = child.dataStart + child.size;
  }
  return children;
}
