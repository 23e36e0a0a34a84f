/**
 * Which kinds of media a publisher's SDP offer sends: an `m=audio` or
 * `m=video` section with a non-zero port whose direction is `sendrecv`
 * (the default, also at session level) or `sendonly`. A recorder needs this:
 * KMS writes nothing until every kind it was connected for is flowing.
 */
export interface SentKinds {
  readonly audio: boolean;
  readonly video: boolean;
}

const DIRECTIONS = new Set(["sendrecv", "sendonly", "recvonly", "inactive"]);

export function sentKinds(sdp: string): SentKinds {
  const lines = sdp.split(/\r?\n/);
  let sessionDirection = "sendrecv";
  const sections: Array<{ kind: string; port: string; direction: string | null }> = [];
  for (const line of lines) {
    if (line.startsWith("m=")) {
      const [kind = "", port = ""] = line.slice(2).split(" ");
      sections.push({ kind, port, direction: null });
      continue;
    }
    const attribute = line.startsWith("a=") ? line.slice(2).trim() : null;
    if (attribute === null || !DIRECTIONS.has(attribute)) continue;
    const current = sections.at(-1);
    if (current) current.direction = attribute;
    else sessionDirection = attribute;
  }
  const sends = (kind: string): boolean =>
    sections.some((section) => {
      if (section.kind !== kind || section.port === "0") return false;
      const direction = section.direction ?? sessionDirection;
      return direction === "sendrecv" || direction === "sendonly";
    });
  return { audio: sends("audio"), video: sends("video") };
}

/** Whether the offer sends its video in simulcast layers (`a=simulcast:send …` in an `m=video` section, RFC 8853). */
export function sendsSimulcast(sdp: string): boolean {
  let inVideo = false;
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith("m=")) inVideo = line.startsWith("m=video ") && !line.startsWith("m=video 0 ");
    else if (inVideo && line.startsWith("a=simulcast:") && /\bsend\b/.test(line)) return true;
  }
  return false;
}
