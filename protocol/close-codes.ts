/**
 * WebSocket close codes of every link in the system, one meaning each. The
 * 4xxx range is ours (RFC 6455 leaves it to applications); the peer reads
 * the code, never the reason text, to decide what to do next.
 */
export const CloseCode = {
  /** Orderly end: `leaveRoom` answered, a room released its bridge, a client closed. */
  NORMAL: 1000,
  /** The process is stopping (a bridge shutting down). */
  GOING_AWAY: 1001,
  /** The peer broke the rules of the link (reserved for rate limits and abuse). */
  POLICY_VIOLATION: 1008,
  /** A peer (a bridge or a client) dropped its own link to dial again: stale heartbeat, resume unanswered. */
  LINK_DROPPED: 4000,
  /** Room → client: the session was resumed on another socket; this one must not reconnect. */
  SESSION_SUPERSEDED: 4001,
  /** Worker → bridge: a newer connection of the same bridge (control or room link) took over. */
  BRIDGE_REPLACED: 4002,
  /** Bridge → worker: the pool refused the bridge's registration; it closes and dials again later. */
  REGISTRATION_FAILED: 4003,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];
