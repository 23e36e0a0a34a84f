/**
 * The state of a ReconnectingSocket (reconnecting-socket.ts): one field,
 * changed only by `transition` (pure, unit-tested). `S` is the socket type
 * (ws's WebSocket in the bridge; anything in tests). Timers are effects of a
 * state, kept by the socket and cleared on leaving it: the backoff timer runs
 * in `backoff`, the heartbeat in `open`.
 *
 *   idle ─start/retry─▶ preparing ─dial─▶ connecting ─opened─▶ open
 *                        ▲      │ prepareFailed │ closed          │ closed
 *                        │      ▼               ▼                 ▼
 *                        └retry─ backoff ◀──────┴─────────────────┘
 *   closed with reconnect: false ─▶ idle;   any ─stop─▶ stopped (final)
 *
 * - `preparing`: getting the headers (a fresh token) for the next attempt.
 * - `retries`: attempts scheduled since the last reset; the next wait is
 *   `backoffDelay(step)`. A connection that stayed open longer than
 *   STABLE_AFTER_MS resets it; one that flaps does not.
 */

/** A connection open this long resets the backoff. */
export const STABLE_AFTER_MS = 5000;

export type LinkState<S> =
  | { readonly kind: "idle"; readonly retries: number }
  | { readonly kind: "preparing"; readonly retries: number }
  | { readonly kind: "connecting"; readonly retries: number; readonly socket: S }
  | { readonly kind: "open"; readonly retries: number; readonly socket: S; readonly openedAt: number }
  /** Waiting `backoffDelay(step)` before the next attempt. */
  | { readonly kind: "backoff"; readonly retries: number; readonly step: number }
  | { readonly kind: "stopped"; readonly retries: number };

export type LinkEvent<S> =
  | { readonly type: "start" }
  /** The backoff wait ended, or someone asked to skip it. */
  | { readonly type: "retry" }
  | { readonly type: "prepareFailed" }
  | { readonly type: "dial"; readonly socket: S }
  | { readonly type: "opened"; readonly at: number }
  /** The socket closed (an open connection or a failed attempt); `reconnect`: dial again. */
  | { readonly type: "closed"; readonly at: number; readonly reconnect: boolean }
  | { readonly type: "stop" };

export function initialLinkState<S>(): LinkState<S> {
  return { kind: "idle", retries: 0 };
}

function waitFor<S>(retries: number): LinkState<S> {
  return { kind: "backoff", retries: retries + 1, step: retries };
}

/** The next state; `from` itself when the event changes nothing. */
export function transition<S>(from: LinkState<S>, event: LinkEvent<S>): LinkState<S> {
  if (from.kind === "stopped") return from;
  const { retries } = from;
  switch (event.type) {
    case "stop":
      return { kind: "stopped", retries };
    case "start":
      return from.kind === "idle" ? { kind: "preparing", retries } : from;
    case "retry":
      return from.kind === "idle" || from.kind === "backoff" ? { kind: "preparing", retries } : from;
    case "prepareFailed":
      return from.kind === "preparing" ? waitFor(retries) : from;
    case "dial":
      return from.kind === "preparing" ? { kind: "connecting", retries, socket: event.socket } : from;
    case "opened":
      return from.kind === "connecting" ? { kind: "open", retries, socket: from.socket, openedAt: event.at } : from;
    case "closed": {
      if (from.kind !== "connecting" && from.kind !== "open") return from;
      const stable = from.kind === "open" && event.at - from.openedAt > STABLE_AFTER_MS;
      const base = stable ? 0 : retries;
      return event.reconnect ? waitFor(base) : { kind: "idle", retries: base };
    }
  }
}

/** The socket of a state that has one. */
export function socketOf<S>(state: LinkState<S>): S | undefined {
  return state.kind === "connecting" || state.kind === "open" ? state.socket : undefined;
}
