/**
 * Every option the worker reads: wrangler vars and secrets. `npm start`
 * passes each one that is set in its environment to the local worker, so a
 * new option is one entry here (and a row in README's table). This file
 * imports nothing, so Node scripts can read it.
 */
export const WORKER_OPTIONS = [
  "AUTH_REGEX",
  "LOOPBACK_REMOTE",
  "LOOPBACK_AND_LOCAL",
  "RECONNECT_WINDOW_SECONDS",
  "MEDIA_TIMEOUT_MS",
  "ADMIN_TOKEN",
  "BRIDGE_SECRET",
  "JOIN_TOKEN_SECRET",
  "JOIN_TOKEN_MAX_TTL_SECONDS",
  "MAX_PARTICIPANTS",
  "RATE_LIMIT_BURST",
  "RATE_LIMIT_PER_SECOND",
  "CHAT_PER_SECOND",
  "IDLE_SOCKET_SECONDS",
  "MAX_PENDING_SOCKETS",
  "MAX_ICE_CANDIDATES",
  "WEBHOOK_URLS",
  "WEBHOOK_SECRET",
  "WEBHOOK_MAX_AGE_SECONDS",
  "STUN_URLS",
  "TURN_URLS",
  "TURN_SECRET",
  "TURN_TTL_SECONDS",
  "ALLOW_RECORDING_FROM_CLIENTS",
  "RECORDING_UPLOAD_TIMEOUT_SECONDS",
] as const;
export type WorkerOption = (typeof WORKER_OPTIONS)[number];
