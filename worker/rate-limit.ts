/**
 * Per-socket request limits (README "Limits"): a token bucket for every
 * request and a smaller one for chat. Kept in memory by the room object, one
 * per socket: no storage write per message. A hibernated (or evicted) object
 * forgets its buckets, so a socket starts again with a full bucket after a
 * quiet spell; a flooding socket keeps its object awake, so it never does.
 */

export interface RateLimits {
  /** Requests a socket may send at once (bucket size). */
  readonly burst: number;
  /** Requests per second the bucket refills with. */
  readonly perSecond: number;
  /** `sendMessage` per second (its own bucket, besides the general one). */
  readonly chatPerSecond: number;
}

/**
 * Measured (test/workers/limits.test.ts): a client joining a full room of 100
 * (99 publishers) that subscribes to everyone and trickles 10 candidates per
 * subscription, every request sent back to back, needs 1,090 tokens at once.
 */
export const DEFAULT_RATE_LIMIT_BURST = 3000;
export const DEFAULT_RATE_LIMIT_PER_SECOND = 100;
export const DEFAULT_CHAT_PER_SECOND = 5;

/** The chat bucket holds twice the chat rate, and at least 10 messages. */
export function chatBurst(chatPerSecond: number): number {
  return Math.max(10, Math.ceil(2 * chatPerSecond));
}

/**
 * Refusals a socket may collect while over its limit before it is closed
 * with 1008. The count restarts once its bucket has refilled to half (the
 * client slowed down).
 */
export const RATE_LIMIT_STRIKES = 100;

export class TokenBucket {
  readonly capacity: number;
  readonly perSecond: number;
  tokens: number;
  last: number;

  constructor(capacity: number, perSecond: number, now: number) {
    this.capacity = capacity;
    this.perSecond = perSecond;
    this.tokens = capacity;
    this.last = now;
  }

  take(now: number): boolean {
    if (now > this.last) {
      this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.perSecond);
      this.last = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** `ok`: carry the request out; `limited`: answer -32000; `close`: close the socket with 1008. */
export type Verdict = "ok" | "limited" | "close";

export class SocketLimiter {
  readonly #general: TokenBucket;
  readonly #chat: TokenBucket;
  #strikes = 0;

  constructor(limits: RateLimits, now: number) {
    this.#general = new TokenBucket(limits.burst, limits.perSecond, now);
    this.#chat = new TokenBucket(chatBurst(limits.chatPerSecond), limits.chatPerSecond, now);
  }

  /** One incoming frame (`method` null when it is not a request or notification, e.g. invalid JSON). */
  check(method: string | null, now: number): Verdict {
    if (method === "ping") return "ok";
    const allowed = this.#general.take(now) && (method !== "sendMessage" || this.#chat.take(now));
    if (allowed) {
      if (this.#general.tokens >= this.#general.capacity / 2) this.#strikes = 0;
      return "ok";
    }
    this.#strikes += 1;
    return this.#strikes >= RATE_LIMIT_STRIKES ? "close" : "limited";
  }
}
