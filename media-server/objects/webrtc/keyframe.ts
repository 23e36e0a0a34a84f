/**
 * Whether an RTP payload starts a keyframe: the one packet a simulcast
 * subscriber can switch layers at without breaking its picture. Only the
 * first packet of the frame answers true (a switch must start with it).
 */
export function startsKeyframe(mimeType: string, payload: Buffer): boolean {
  switch (mimeType.toLowerCase()) {
    case "video/vp8":
      return vp8StartsKeyframe(payload);
    case "video/h264":
      return h264StartsKeyframe(payload);
    default:
      return false;
  }
}

/** RFC 7741 §4.2: the payload descriptor, then (start of partition 0 only) the VP8 header whose P bit is 0 on keyframes. */
function vp8StartsKeyframe(payload: Buffer): boolean {
  if (payload.length < 1) return false;
  const first = payload[0] ?? 0;
  const extended = (first & 0x80) !== 0;
  const startOfPartition = (first & 0x10) !== 0;
  const partitionIndex = first & 0x07;
  if (!startOfPartition || partitionIndex !== 0) return false;
  let offset = 1;
  if (extended) {
    const flags = payload[offset] ?? 0;
    offset += 1;
    if (flags & 0x80) offset += (payload[offset] ?? 0) & 0x80 ? 2 : 1; // PictureID, 7 or 15 bits
    if (flags & 0x40) offset += 1; // TL0PICIDX
    if (flags & 0x30) offset += 1; // TID/Y/KEYIDX
  }
  if (offset >= payload.length) return false;
  return ((payload[offset] ?? 1) & 0x01) === 0;
}

const H264_IDR = 5;
const H264_SPS = 7;
const H264_STAP_A = 24;
const H264_FU_A = 28;

/** RFC 6184: an IDR slice or an SPS, alone, aggregated (STAP-A) or the first fragment (FU-A). */
function h264StartsKeyframe(payload: Buffer): boolean {
  const type = (payload[0] ?? 0) & 0x1f;
  if (type === H264_IDR || type === H264_SPS) return true;
  if (type === H264_FU_A) {
    const header = payload[1] ?? 0;
    const fragmentType = header & 0x1f;
    return (header & 0x80) !== 0 && (fragmentType === H264_IDR || fragmentType === H264_SPS);
  }
  if (type === H264_STAP_A) {
    for (let offset = 1; offset + 2 < payload.length; ) {
      const size = payload.readUInt16BE(offset);
      const nalType = (payload[offset + 2] ?? 0) & 0x1f;
      if (nalType === H264_IDR || nalType === H264_SPS) return true;
      offset += 2 + size;
    }
  }
  return false;
}
