/**
 * What the demo tells people: form validation (the server's name rules) and
 * a sentence for every way joining or staying can fail.
 */
import { JsonRpcCode, RoomCode } from "../../../protocol/errors.ts";
import { MAX_NAME_LENGTH, name as nameSchema } from "../../../protocol/room.ts";
import { RpcRequestError } from "../../../protocol/rpc-peer.ts";
import type { CloseReason } from "../client/state.ts";
import type { Eviction } from "../client/room-types.ts";

/**
 * Any failure as an RpcRequestError, for the sentences below: a server's or
 * transport error as it is; anything else (a RoomClientError, a browser
 * error) with its message and the generic code 999.
 */
export function errorOf(error: unknown): RpcRequestError {
  if (error instanceof RpcRequestError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new RpcRequestError({ code: RoomCode.GENERIC, message });
}

/** Null when `value` is a valid name; otherwise the sentence to show. */
export function nameProblem(value: string, what: "your name" | "a room name"): string | null {
  const label = what === "your name" ? "Your name" : "The room name";
  if (value.trim().length === 0) return `Enter ${what}.`;
  if (value.length > MAX_NAME_LENGTH) return `${label} can be at most ${MAX_NAME_LENGTH} characters.`;
  const parsed = nameSchema.safeParse(value);
  if (!parsed.success) return `${label} ${parsed.error.issues[0]?.message ?? "is not valid"}.`;
  return null;
}

export function joinErrorMessage(error: RpcRequestError, user: string, room: string): string {
  switch (error.code) {
    case RoomCode.EXISTING_USER_IN_ROOM:
      return `The name “${user}” is already taken in room “${room}”. Choose another name.`;
    case RoomCode.ROOM_CANNOT_BE_CREATED:
      return `“${user}” may not create room “${room}”. Join a room that is already open, or use another name.`;
    case RoomCode.TRANSPORT:
    case RoomCode.TRANSPORT_REQUEST:
      return "Can't reach the room server. Check your connection and try again.";
    case RoomCode.TRANSPORT_RESPONSE:
      return "The room server did not answer in time. Try again in a moment.";
    case JsonRpcCode.INVALID_PARAMS:
      return `The server refused the name: ${error.message}`;
    default:
      return `Could not join the room: ${error.message} (code ${error.code}).`;
  }
}

export function cameraDeniedMessage(error: Error): string {
  if (error.name === "NotAllowedError" || error.name === "SecurityError") {
    return "Camera and microphone access was denied. Allow it in the browser's site settings and try again, or join without camera.";
  }
  if (error.name === "NotFoundError" || error.name === "OverconstrainedError") {
    return "No camera or microphone was found. Connect one and try again, or join without camera.";
  }
  if (error.name === "NotReadableError") {
    return "The camera is in use by another application. Close it and try again, or join without camera.";
  }
  return `Could not start the camera (${error.message}). You can join without camera.`;
}

export interface Notice {
  readonly title: string;
  readonly text: string;
  /** Offer "Join again" (same name, same room). */
  readonly rejoin: boolean;
}

export function closedNotice(
  reason: CloseReason,
  room: string,
  error?: RpcRequestError,
  eviction?: Eviction | null,
): Notice {
  switch (reason) {
    case "evicted":
      if (eviction && !eviction.roomClosed) {
        const who = eviction.by === undefined ? "The administrator" : eviction.by;
        return { title: "You were removed", text: `${who} removed you from room “${room}”.`, rejoin: false };
      }
      return {
        title: "You were removed",
        text: `Room “${room}” was closed by the server and everyone in it was asked to leave.`,
        rejoin: false,
      };
    case "room-closed":
      return { title: "Room closed", text: `Room “${room}” has been closed by the server.`, rejoin: false };
    case "session-expired":
      return {
        title: "Your place in the room expired",
        text: `The connection was down for too long and your place in “${room}” was given up. You can join again.`,
        rejoin: true,
      };
    case "reconnect-failed":
      return {
        title: "Connection lost",
        text: `Could not reconnect to the room server. ${error ? error.message : ""}`.trim(),
        rejoin: true,
      };
    case "superseded":
      return {
        title: "Opened elsewhere",
        text: "This session was resumed on another connection (another tab or device).",
        rejoin: false,
      };
    case "join-failed":
    case "left":
      return { title: "Left the room", text: `You left “${room}”.`, rejoin: true };
  }
}
