/** Socket operations that may race with the peer going away; failures are expected and harmless. */

export function safeSend(ws: WebSocket, data: string | ArrayBuffer): void {
  try {
    ws.send(data);
  } catch {
    // The peer is gone; its close event cleans up.
  }
}

/** 1005/1006/1015 describe a close but may not be sent in one. */
export function sendableCloseCode(code: number): number {
  return code === 1005 || code === 1006 || code === 1015 ? 1000 : code;
}

export function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(sendableCloseCode(code), reason);
  } catch {
    // Already closing.
  }
}
