import { randomUUID } from "node:crypto";
import type { EventSink, MediaObject, ObjectOwner } from "./objects/media-object.ts";

/** Where a session's replies and events go: one WebSocket. */
export interface Connection {
  send(frame: unknown): void;
}

/**
 * A Kurento session: what one client created and subscribed to. It outlives
 * its WebSocket for a grace period so a client that reconnects and sends
 * `connect {sessionId}` finds its objects again.
 */
export class Session implements EventSink, ObjectOwner {
  readonly id: string;
  connection: Connection | undefined;
  private readonly objects = new Set<MediaObject>();
  private readonly subscriptions = new Map<string, MediaObject>();
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(id: string = randomUUID()) {
    this.id = id;
  }

  notify(frame: unknown): void {
    this.connection?.send(frame);
  }

  adopt(object: MediaObject): void {
    object.owner = this;
    this.objects.add(object);
  }

  forget(object: MediaObject): void {
    this.objects.delete(object);
  }

  addSubscription(subscriptionId: string, object: MediaObject): void {
    this.subscriptions.set(subscriptionId, object);
  }

  forgetSubscription(subscriptionId: string): void {
    this.subscriptions.delete(subscriptionId);
  }

  /** The socket went away: end the session unless someone resumes it within `graceMs`. */
  detach(graceMs: number, onExpired: () => void): void {
    this.connection = undefined;
    this.cancelGrace();
    this.graceTimer = setTimeout(onExpired, graceMs);
    this.graceTimer.unref();
  }

  attach(connection: Connection): void {
    this.cancelGrace();
    this.connection = connection;
  }

  /** Releases everything the session created and drops its subscriptions on objects others own. */
  async end(): Promise<void> {
    this.cancelGrace();
    this.connection = undefined;
    for (const [subscriptionId, object] of this.subscriptions) object.unsubscribe(subscriptionId);
    this.subscriptions.clear();
    // Pipelines first: releasing one takes its elements with it.
    const owned = [...this.objects].sort((a, b) => Number(a.parent !== undefined) - Number(b.parent !== undefined));
    for (const object of owned) await object.release();
    this.objects.clear();
  }

  private cancelGrace(): void {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
  }
}
