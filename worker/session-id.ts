/**
 * Session ids carry their room, so the legacy `/room` relay can route a
 * `connect {sessionId}` (a resumed session) to the right room object without
 * any shared lookup table.
 */
const SEPARATOR = ".";

function toBase64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): string | null {
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return null;
  }
}

export function newSessionId(room: string): string {
  return `${crypto.randomUUID().replace(/-/g, "")}${SEPARATOR}${toBase64Url(room)}`;
}

export function roomOfSessionId(sessionId: string): string | null {
  const cut = sessionId.indexOf(SEPARATOR);
  return cut < 0 ? null : fromBase64Url(sessionId.slice(cut + 1));
}
