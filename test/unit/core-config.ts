/**
 * The room core's configuration as the unit tests use it: anyone may create a
 * room, generous limits, the defaults' timers. Not a test file.
 */
import type { CoreContext } from "../../worker/core/hooks.ts";

export function testCoreConfig(extra: Partial<CoreContext["config"]> = {}): CoreContext["config"] {
  return {
    authRegex: /^(?:.*)$/,
    reconnectWindowMs: 10_000,
    maxParticipants: 100,
    maxIceCandidates: 100,
    mediaTimeoutMs: 25_000,
    ...extra,
  };
}
