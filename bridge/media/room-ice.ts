/**
 * A room's trickle-ICE bookkeeping: candidates for an endpoint that does not
 * exist yet, or has not processed its offer, wait in a queue (the newest
 * MAX_QUEUED_CANDIDATES per endpoint) and are added right after
 * `processOffer`. An endpoint is keyed by its owner and its name (the user's
 * own name for a publisher, the sender's for a subscription).
 */
import type { IceCandidate, WebRtcEndpoint } from "./media-server.ts";

/** Candidates kept per endpoint while it does not exist yet. */
export const MAX_QUEUED_CANDIDATES = 100;

function keyOf(user: string, endpoint: string): string {
  return `${user}\u0000${endpoint}`;
}

function userOf(key: string): string {
  return key.slice(0, key.indexOf("\u0000"));
}

export class IceQueues {
  private readonly queues = new Map<string, IceCandidate[]>();
  /**
   * Endpoints with a publish or subscribe waiting or running that has not
   * processed its offer yet: their candidates are queued meanwhile, even if an
   * older endpoint of the same name still exists.
   */
  private readonly negotiating = new Map<string, number>();

  /** Marks the endpoint as negotiating until `done` (idempotent) is called or `run` ends. */
  async negotiate<T>(user: string, endpoint: string, run: (done: () => void) => Promise<T>): Promise<T> {
    const key = keyOf(user, endpoint);
    this.negotiating.set(key, (this.negotiating.get(key) ?? 0) + 1);
    let finished = false;
    const done = (): void => {
      if (finished) return;
      finished = true;
      const left = (this.negotiating.get(key) ?? 1) - 1;
      if (left > 0) this.negotiating.set(key, left);
      else this.negotiating.delete(key);
    };
    try {
      return await run(done);
    } finally {
      done();
    }
  }

  /** Queues the candidate unless the endpoint is ready and not negotiating again; true when queued. */
  queueUnlessReady(user: string, endpoint: string, ready: boolean, candidate: IceCandidate): boolean {
    const key = keyOf(user, endpoint);
    if (ready && !this.negotiating.has(key)) return false;
    const queue = this.queues.get(key) ?? [];
    queue.push(candidate);
    if (queue.length > MAX_QUEUED_CANDIDATES) queue.shift();
    this.queues.set(key, queue);
    return true;
  }

  /** Adds the queued candidates to the endpoint that now exists; a refused one is reported, not thrown. */
  async flush(
    user: string,
    endpoint: string,
    target: WebRtcEndpoint,
    onRefused: (error: unknown) => void,
  ): Promise<void> {
    const key = keyOf(user, endpoint);
    const queue = this.queues.get(key);
    if (!queue) return;
    this.queues.delete(key);
    for (const candidate of queue) {
      try {
        await target.addIceCandidate(candidate);
      } catch (error) {
        onRefused(error);
      }
    }
  }

  drop(user: string, endpoint: string): void {
    this.queues.delete(keyOf(user, endpoint));
  }

  /**
   * Drops the queue of an endpoint that goes away, unless a publish or
   * subscribe for that name is negotiating: then the queue holds the new
   * offer's candidates (they may arrive before that command's work starts).
   */
  dropUnlessNegotiating(user: string, endpoint: string): void {
    const key = keyOf(user, endpoint);
    if (!this.negotiating.has(key)) this.queues.delete(key);
  }

  /** Drops every queue of `user`'s endpoints. */
  dropUser(user: string): void {
    for (const key of [...this.queues.keys()]) if (userOf(key) === user) this.queues.delete(key);
  }

  clear(): void {
    this.queues.clear();
  }

  /** Users with candidates waiting. */
  users(): Set<string> {
    return new Set([...this.queues.keys()].map(userOf));
  }

  get size(): number {
    let queued = 0;
    for (const queue of this.queues.values()) queued += queue.length;
    return queued;
  }
}
