/**
 * Timeouts that two processes must agree on. Each side's own knobs
 * (`MEDIA_TIMEOUT_MS`, `REQUEST_TIMEOUT_MS`) stay configuration; these are
 * part of the contract, so they live in one place.
 */

/** How long a bridge has to open `/bridge/rooms/:room` after `attach`; it answers the attach with an error after this. */
export const ATTACH_TIMEOUT_MS = 10_000;

/** The pool waits this much longer than ATTACH_TIMEOUT_MS, so the bridge's own, more precise answer arrives first. */
export const ATTACH_REPLY_MARGIN_MS = 2_000;

/** How long a bridge waits for the pool to answer `register`. */
export const REGISTER_TIMEOUT_MS = 10_000;

/** Longest lifetime of a bridge connection token (seconds). */
export const MAX_BRIDGE_TOKEN_TTL_SECONDS = 60;

/** Clock difference tolerated between a token's signer and its verifier (seconds). */
export const TOKEN_CLOCK_SKEW_SECONDS = 5;
