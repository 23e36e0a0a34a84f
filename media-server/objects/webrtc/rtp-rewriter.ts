import type { RtpPacket } from "werift";

/** Room for the largest RTP packet a 1500-byte MTU carries, with a margin for what the rewriter adds. */
const MAX_PACKET = 1600;
/** RFC 8285 one-byte header extension profile. */
const ONE_BYTE_PROFILE = 0xbede;

/**
 * Rewrites packets from the graph into one subscriber's stream, straight
 * into one reused buffer: the subscriber's SSRC and payload type, sequence
 * numbers and timestamps offset so that a change of source (another
 * publisher, or the same one restarted with a new SSRC) continues the
 * stream instead of jumping, and the source's header extensions dropped (their
 * ids were negotiated with the publisher, not with this subscriber; see
 * forwardableCopy). The only extension written is this peer's own MID, as
 * werift's sender does, for BUNDLE demultiplexing.
 */
export class RtpRewriter {
  readonly ssrc: number;
  /** The rewritten packet, valid until the next write(). */
  readonly buffer = Buffer.allocUnsafe(MAX_PACKET);
  /** Length of the last packet written into buffer, and of its header. */
  length = 0;
  headerLength = 0;
  /** Sequence number and timestamp of the last packet written. */
  sequenceNumber = 0;
  timestamp = 0;
  private readonly timestampStep: number;
  private readonly extension: Buffer | undefined;
  private sourceSsrc: number | undefined;
  private sequenceOffset = 0;
  private timestampOffset = 0;

  /**
   * `timestampStep`: how far the timestamp moves across a change of source
   * (one frame: 3000 at 90 kHz for video, 960 at 48 kHz for audio).
   * `mid`: this peer's MID and the extension id it negotiated for it.
   */
  constructor(ssrc: number, timestampStep: number, mid?: { id: number; value: string }) {
    this.ssrc = ssrc;
    this.timestampStep = timestampStep;
    this.extension = mid ? oneByteExtensionBlock(mid.id, Buffer.from(mid.value, "ascii")) : undefined;
  }

  /** Writes `packet` rewritten into buffer; false when it cannot fit (it is then not sent). */
  write(packet: RtpPacket, payloadType: number): boolean {
    const header = packet.header;
    if (header.ssrc !== this.sourceSsrc) this.switchSource(header.ssrc, header.sequenceNumber, header.timestamp);
    const csrcs = header.csrc;
    const extension = this.extension;
    const payload = packet.payload;
    const padding = header.padding ? header.paddingSize : 0;
    const headerLength = 12 + csrcs.length * 4 + (extension ? extension.length : 0);
    const length = headerLength + payload.length + padding;
    if (length > MAX_PACKET || csrcs.length > 15) return false;
    const sequenceNumber = (header.sequenceNumber + this.sequenceOffset) & 0xffff;
    const timestamp = (header.timestamp + this.timestampOffset) >>> 0;
    const out = this.buffer;
    out[0] = 0x80 | (padding > 0 ? 0x20 : 0) | (extension ? 0x10 : 0) | csrcs.length;
    out[1] = (header.marker ? 0x80 : 0) | (payloadType & 0x7f);
    out.writeUInt16BE(sequenceNumber, 2);
    out.writeUInt32BE(timestamp, 4);
    out.writeUInt32BE(this.ssrc, 8);
    let offset = 12;
    for (const csrc of csrcs) {
      out.writeUInt32BE(csrc >>> 0, offset);
      offset += 4;
    }
    if (extension) offset += extension.copy(out, offset);
    offset += payload.copy(out, offset);
    if (padding > 0) {
      out.fill(0, offset, offset + padding - 1);
      out[offset + padding - 1] = padding;
    }
    this.length = length;
    this.headerLength = headerLength;
    this.sequenceNumber = sequenceNumber;
    this.timestamp = timestamp;
    return true;
  }

  /** The first packet of a source keeps its numbers; a later source continues one frame after the last packet. */
  private switchSource(ssrc: number, sequenceNumber: number, timestamp: number): void {
    if (this.sourceSsrc !== undefined) {
      this.sequenceOffset = (this.sequenceNumber + 1 - sequenceNumber) & 0xffff;
      this.timestampOffset = (this.timestamp + this.timestampStep - timestamp) >>> 0;
    }
    this.sourceSsrc = ssrc;
  }
}

/** RFC 8285 one-byte-header extension block holding one element, padded to 32 bits. */
function oneByteExtensionBlock(id: number, value: Buffer): Buffer {
  const elementLength = 1 + value.length;
  const words = Math.ceil(elementLength / 4);
  const block = Buffer.alloc(4 + words * 4);
  block.writeUInt16BE(ONE_BYTE_PROFILE, 0);
  block.writeUInt16BE(words, 2);
  block[4] = (id << 4) | (value.length - 1);
  value.copy(block, 5);
  return block;
}
