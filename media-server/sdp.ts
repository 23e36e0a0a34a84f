import { KurentoError } from "./errors.ts";

const MAX_SDP_LENGTH = 200_000;
const SDP_LINE = /^[a-z]=.*$/;

/**
 * A structural check before werift sees the text, so garbage gets a Kurento
 * SDP_PARSE_ERROR rather than whatever werift's parser happens to throw.
 */
export function assertParsableSdp(sdp: string, what: string): void {
  if (sdp.length > MAX_SDP_LENGTH)
    throw new KurentoError("SDP_PARSE_ERROR", `${what} is too long (${sdp.length} characters)`);
  const lines = sdp.split(/\r?\n/).filter((line) => line !== "");
  if (lines[0] !== "v=0") throw new KurentoError("SDP_PARSE_ERROR", `${what} is not an SDP: it must start with "v=0"`);
  const bad = lines.find((line) => !SDP_LINE.test(line));
  if (bad !== undefined)
    throw new KurentoError("SDP_PARSE_ERROR", `${what} has a malformed line: ${JSON.stringify(bad.slice(0, 80))}`);
  if (!lines.some((line) => line.startsWith("m=")))
    throw new KurentoError("SDP_PARSE_ERROR", `${what} has no media section (m=)`);
  if (!lines.some((line) => line.startsWith("a=fingerprint:"))) {
    throw new KurentoError("SDP_PARSE_ERROR", `${what} has no DTLS fingerprint; a WebRtcEndpoint needs one`);
  }
}

/** KMS hands out candidates only through IceCandidateFound once gatherCandidates is called; SDPs carry none. */
export function withoutCandidates(sdp: string): string {
  return sdp
    .split("\r\n")
    .filter((line) => !line.startsWith("a=candidate:") && line !== "a=end-of-candidates")
    .join("\r\n");
}
