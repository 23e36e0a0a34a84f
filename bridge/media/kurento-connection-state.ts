/**
 * The state of the bridge's connection to one KMS: one field, changed only by
 * `transition` (pure, unit-tested). Everything else the connection needs is
 * derived from it: the public MediaServerState, "has it ever been up?", "was
 * its media already declared lost?". Timers are effects of a state (the lost
 * timer runs while `down`), kept by the connection and cleared on leaving it.
 *
 *   connecting ─socketUp─▶ starting(first) ─ready─▶ connected ─socketDown─▶ down ─lostTimeout─▶ down(lost)
 *                               starting ◀────────────sessionUp─────────────────┴──────────────────┘
 *                               (─ready─▶ connected)
 *   any ─close─▶ closed (final)
 *
 * - `starting`: the session is up (first connection, or kurento-client's
 *   `connect {sessionId}` resume answered) and the bridge is reading the
 *   server's capabilities; `ready` ends it.
 * - `down`: the socket dropped after being connected; kurento-client is
 *   redialling. `lost`: the bridge already told the rooms their media is gone
 *   (it stayed down longer than `lostAfterMs`).
 * - A socket drop outside `connected` is ignored (the pending step ends it),
 *   as the bridge always did.
 */
import type { MediaServerState } from "./media-server.ts";

export type KmsConnectionState =
  | { readonly kind: "connecting" }
  | { readonly kind: "starting"; readonly first: boolean }
  | { readonly kind: "connected" }
  | { readonly kind: "down"; readonly lost: boolean }
  | { readonly kind: "closed" };

export type KmsConnectionEvent =
  /** The WebSocket opened (first time or again). */
  | { readonly type: "socketUp" }
  /** kurento-client resumed (`sameSession`) or could not resume (the server restarted) its session. */
  | { readonly type: "sessionUp"; readonly sameSession: boolean }
  /** Capabilities read (or given up on): usable. */
  | { readonly type: "ready" }
  /** The WebSocket closed. */
  | { readonly type: "socketDown" }
  /** Down for `lostAfterMs`. */
  | { readonly type: "lostTimeout" }
  | { readonly type: "close" };

export const INITIAL_KMS_STATE: KmsConnectionState = { kind: "connecting" };

/** The next state; `from` itself when the event changes nothing. */
export function transition(from: KmsConnectionState, event: KmsConnectionEvent): KmsConnectionState {
  if (from.kind === "closed") return from;
  switch (event.type) {
    case "close":
      return { kind: "closed" };
    case "socketUp":
      // Later sockets wait for the session resume (`sessionUp`).
      return from.kind === "connecting" ? { kind: "starting", first: true } : from;
    case "sessionUp":
      return { kind: "starting", first: from.kind === "connecting" };
    case "ready":
      return from.kind === "starting" ? { kind: "connected" } : from;
    case "socketDown":
      return from.kind === "connected" ? { kind: "down", lost: false } : from;
    case "lostTimeout":
      return from.kind === "down" && !from.lost ? { kind: "down", lost: true } : from;
  }
}

/** What the rest of the bridge sees (MediaServer.state). */
export function publicState(state: KmsConnectionState): MediaServerState {
  switch (state.kind) {
    case "connecting":
      return "connecting";
    case "starting":
      return state.first ? "connecting" : "disconnected";
    case "connected":
      return "connected";
    case "down":
      return "disconnected";
    case "closed":
      return "closed";
  }
}

/** Whether the session has been up at least once (later sockets are resumes). */
export function hasBeenUp(state: KmsConnectionState): boolean {
  return state.kind !== "connecting";
}
