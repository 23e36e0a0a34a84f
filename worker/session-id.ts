/**
 * Session ids carry their room, so the legacy `/room` relay can route a
 * `connect {sessionId}` (a resumed session) to the right room object without
 * any shared lookup table.
 */
import { decodeBase64Url, encodeBase64Url } from "../protocol/tokens/base64url.ts";

const SEPARATOR = ".";

function fromBase64Url(text: string): string | null {
  const bytes = decodeBase64Url(text);
  if (!bytes) return null;
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return null;
  }
}

export function newSessionId(room: string): string {
  return `${crypto.randomUUID().replace(/-/g, "")}${SEPARATOR}${encodeBase64Url(new TextEncoder().encode(room))}`;
}

export function roomOfSessionId(sessionId: string): string | null {
  const cut = sessionId.indexOf(SEPARATOR);
  return cut < 0 ? null : fromBase64Url(sessionId.slice(cut + 1));
}
