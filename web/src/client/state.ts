/**
 * The room's connection state: one field, changed by one transition function
 * (livekit's client does the same). Every other flag a room needs ("may I
 * send?", "should a closed socket reconnect?") is derived from it.
 *
 *   new ──▶ connecting ──▶ connected ◀──▶ reconnecting
 *              │               │               │
 *              ▼               ▼               ▼
 *            closed ◀────── leaving ◀──────────┘
 *
 * `closed` is final: a Room is used for one stay in one room; join again
 * with a new Room.
 */
export type ConnectionState = "new" | "connecting" | "connected" | "reconnecting" | "leaving" | "closed";

export const CONNECTION_STATES: readonly ConnectionState[] = [
  "new",
  "connecting",
  "connected",
  "reconnecting",
  "leaving",
  "closed",
];

const ALLOWED: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  new: ["connecting", "closed"],
  connecting: ["connected", "leaving", "closed"],
  connected: ["reconnecting", "leaving", "closed"],
  reconnecting: ["connected", "leaving", "closed"],
  leaving: ["closed"],
  closed: [],
};

/** Whether `from → to` is a legal transition. */
export function canTransition(from: ConnectionState, to: ConnectionState): boolean {
  return ALLOWED[from].includes(to);
}

/** Why the room ended up `closed` (for the application's message). */
export type CloseReason =
  | "left" // the application called leave()/close()
  | "join-failed" // joinRoom (or the first socket) failed
  | "room-closed" // the server closed the room (roomClosed)
  | "evicted" // the server evicted this participant (participantEvicted)
  | "session-expired" // reconnected too late: the seat was given up (40007)
  | "reconnect-failed" // the server could not be reached again in time
  | "superseded"; // the session was resumed on another connection

/** Requests may be sent only while connected. */
export function canSend(state: ConnectionState): boolean {
  return state === "connected";
}
