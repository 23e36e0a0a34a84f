/**
 * The reconnection loop: after a drop, a new socket and `connect {sessionId}`
 * (the server kept the seat), at once, then with a doubling delay, until the
 * session is back, the seat has expired (40007), the budget is spent or the
 * Room stops waiting (left, closed).
 */
import { z } from "zod";
import { backoffDelay } from "../../../protocol/backoff.ts";
import { INVALID_SESSION_CODE } from "../../../protocol/errors.ts";
import { peerDescriptor, results, type PeerDescriptor } from "../../../protocol/room.ts";
import { asRpcError } from "./errors.ts";
import type { ReconnectOptions } from "./room-types.ts";

/** `connect`'s result; `value` (the roster) is used when a server sends it. */
export const connectResult = results.connect.extend({ value: z.array(peerDescriptor).optional() });

/**
 * Delay before attempt `attempt` (1-based): none for the first, then
 * `initialDelayMs` doubling up to `maxDelayMs`. The project's backoff,
 * without jitter: the `reconnecting` event announces the exact delay.
 */
export function reconnectDelay(attempt: number, options: ReconnectOptions): number {
  if (attempt <= 1) return 0;
  return backoffDelay(attempt - 2, { minMs: options.initialDelayMs, maxMs: options.maxDelayMs }, () => 1);
}

/** How the loop ends. */
export type ReconnectOutcome =
  | { readonly kind: "resumed"; readonly roster: readonly PeerDescriptor[] | undefined }
  | { readonly kind: "expired" }
  | { readonly kind: "gave-up"; readonly lastError: string }
  /** The Room stopped waiting (left or closed meanwhile): nothing to do. */
  | { readonly kind: "stopped" };

/** What the loop needs from its Room. */
export interface ReconnectContext {
  /** Whether the Room still wants the session back (it is `reconnecting`). */
  reconnecting(): boolean;
  announce(attempt: number, delayMs: number): void;
  /** Opens a new socket. */
  open(): Promise<void>;
  /** `connect {sessionId}` on it. */
  resume(): Promise<z.infer<typeof connectResult>>;
  /** Closes the socket of a failed resume before the next attempt. */
  abandon(): void;
  sleep(ms: number): Promise<void>;
}

export async function reconnectLoop(options: ReconnectOptions, ctx: ReconnectContext): Promise<ReconnectOutcome> {
  const started = Date.now();
  let lastError = "";
  for (let attempt = 1; ctx.reconnecting(); attempt++) {
    const delayMs = reconnectDelay(attempt, options);
    if (Date.now() + delayMs - started > options.timeoutMs) break;
    ctx.announce(attempt, delayMs);
    if (delayMs > 0) await ctx.sleep(delayMs);
    if (!ctx.reconnecting()) return { kind: "stopped" };
    try {
      await ctx.open();
    } catch (error) {
      lastError = asRpcError(error).message;
      continue;
    }
    if (!ctx.reconnecting()) return { kind: "stopped" };
    try {
      const resumed = await ctx.resume();
      if (!ctx.reconnecting()) return { kind: "stopped" };
      return { kind: "resumed", roster: resumed.value };
    } catch (error) {
      const failure = asRpcError(error);
      if (failure.code === INVALID_SESSION_CODE) return { kind: "expired" };
      lastError = failure.message;
      ctx.abandon();
    }
  }
  return ctx.reconnecting() ? { kind: "gave-up", lastError } : { kind: "stopped" };
}

/** A sleep the Room can cut short (leaving while waiting to reconnect). */
export class WakeableSleep {
  #wake: (() => void) | null = null;

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.#wake === done) this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  wake(): void {
    this.#wake?.();
  }
}
