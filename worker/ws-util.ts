/** Socket operations that may race with the peer going away; failures are expected and harmless. */
import { CloseCode } from "../protocol/close-codes.ts";

export function safeSend(ws: WebSocket, data: string | ArrayBuffer): void {
  try {
    ws.send(data);
  } catch {
    // The peer is gone; its close event cleans up.
  }
}

/** 1005 (no status), 1006 (abnormal) and 1015 (TLS failure) describe a close but may not be sent in one. */
function sendableCloseCode(code: number): number {
  return code === 1005 || code === 1006 || code === 1015 ? CloseCode.NORMAL : code;
}

export function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(sendableCloseCode(code), reason);
  } catch {
    // Already closing.
  }
}
