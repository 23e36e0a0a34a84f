import { randomUUID } from "node:crypto";
import type { EventSink, MediaObject, ObjectOwner } from "./objects/media-object.ts";

/** Where a session's replies and events go: one WebSocket. */
export interface Connection {
  send(frame: unknown): void;
  /** Whether the socket is open (no close frame sent or received). */
  live(): boolean;
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

  /** `unsubscribe`: ends the subscription if it is this session's, on `objectId`; others' are left alone. */
  dropSubscription(subscriptionId: string, objectId: string): void {
    const object = this.subscriptions.get(subscriptionId);
    if (object?.id !== objectId) return;
    object.unsubscribe(subscriptionId);
    this.subscriptions.delete(subscriptionId);
  }

  /** The socket went away: end the session unless someone resumes it within `graceMs`. */
  detach(graceMs: number, onExpired: () => void): void {
    this.connection = undefined;
    this.cancelGrace();
    this.graceTimer = setTimeout(onExpired, graceMs);
    this.graceTimer.unref();
  }

  /**
   * Whether another socket, still open, speaks for this session. Such a session
   * cannot be resumed or joined from `connection`: its id alone does not let a
   * second client take it over, see its events or use its objects.
   */
  heldElsewhere(connection: Connection): boolean {
    return this.connection !== undefined && this.connection !== connection && this.connection.live();
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
