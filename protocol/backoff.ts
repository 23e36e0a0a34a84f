/**
 * The one reconnection backoff of the project: exponential from `minMs`,
 * capped at `maxMs`, with "equal jitter" (half fixed, half random) so a fleet
 * of bridges or clients that lost the worker at once does not come back in
 * lockstep.
 */
export interface BackoffOptions {
  readonly minMs: number;
  readonly maxMs: number;
}

export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const base = Math.min(options.maxMs, options.minMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.round(base / 2 + (base / 2) * random());
}
