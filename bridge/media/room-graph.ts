/**
 * Who holds which media objects in a room: per published stream
 * `WebRtcEndpoint → [filters] → PassThrough`, per subscription the
 * subscriber's WebRtcEndpoint fed by the sender stream's PassThrough; and
 * how they are let go. Dropping a published stream drops the subscriptions
 * to it.
 *
 * Published streams are keyed by their stream id (`<user>_<stream>`, which
 * names one stream of one user since stream names have no `_`), so a user
 * holds one publisher per stream (webcam, screen…).
 */
import type { FilterName } from "../../protocol/bridge.ts";
import { splitStreamId, streamIdOf } from "../../protocol/room.ts";
import type { IceQueues } from "./room-ice.ts";
import type { MediaElement, WebRtcEndpoint } from "./media-server.ts";
import type { SentKinds } from "./sdp-kinds.ts";

export interface Publisher {
  readonly user: string;
  readonly stream: string;
  readonly endpoint: WebRtcEndpoint;
  readonly passThrough: MediaElement;
  /** In chain order: endpoint → filters[0] → … → passThrough. */
  readonly filters: Array<{ name: FilterName; element: MediaElement }>;
  /** ICE candidates go straight to the endpoint once its offer is processed. */
  ready: boolean;
  /** What the publisher's offer sends (a recorder must wait for exactly these kinds). */
  readonly kinds: SentKinds;
}

export interface Subscription {
  readonly endpoint: WebRtcEndpoint;
  ready: boolean;
}

export class RoomGraph {
  /** Stream id (`<user>_<stream>`) → its publisher. */
  readonly publishers = new Map<string, Publisher>();
  /** subscriber → sender stream id → subscription */
  readonly subscriptions = new Map<string, Map<string, Subscription>>();
  private readonly ice: IceQueues;

  constructor(ice: IceQueues) {
    this.ice = ice;
  }

  subscription(user: string, sender: string): Subscription | undefined {
    return this.subscriptions.get(user)?.get(sender);
  }

  addSubscription(user: string, sender: string, record: Subscription): void {
    let map = this.subscriptions.get(user);
    if (!map) {
      map = new Map();
      this.subscriptions.set(user, map);
    }
    map.set(sender, record);
  }

  /** Forgets `user`'s subscription to `sender` if it is still the one on `endpoint` (nothing released). */
  forgetSubscription(user: string, sender: string, endpoint: WebRtcEndpoint): void {
    const map = this.subscriptions.get(user);
    if (!map || map.get(sender)?.endpoint !== endpoint) return;
    map.delete(sender);
    if (map.size === 0) this.subscriptions.delete(user);
  }

  get subscriptionCount(): number {
    let count = 0;
    for (const map of this.subscriptions.values()) count += map.size;
    return count;
  }

  get empty(): boolean {
    return this.publishers.size === 0 && [...this.subscriptions.values()].every((map) => map.size === 0);
  }

  /** Users the bridge holds media for. */
  heldUsers(): string[] {
    const users = new Set<string>([...this.publishers.values()].map((publisher) => publisher.user));
    for (const [user, map] of this.subscriptions) if (map.size) users.add(user);
    return [...users].sort();
  }

  /** The stream ids of `user`'s publishers. */
  streamsOf(user: string): string[] {
    return [...this.publishers.values()].filter((p) => p.user === user).map((p) => streamIdOf(p.user, p.stream));
  }

  /** Releases the publisher of stream `id` (`<user>_<stream>`) and everyone's subscriptions to it. */
  async dropPublisher(id: string): Promise<void> {
    const publisher = this.publishers.get(id);
    // A publish replacing this one may already have queued its candidates.
    this.ice.dropUnlessNegotiating(splitStreamId(id).user, id);
    if (!publisher) return;
    this.publishers.delete(id);
    const released: Array<Promise<void>> = [];
    for (const [subscriber, map] of this.subscriptions) {
      const subscription = map.get(id);
      if (!subscription) continue;
      map.delete(id);
      this.ice.drop(subscriber, id);
      released.push(subscription.endpoint.release());
      if (map.size === 0) this.subscriptions.delete(subscriber);
    }
    released.push(
      publisher.endpoint.release(),
      publisher.passThrough.release(),
      ...publisher.filters.map((entry) => entry.element.release()),
    );
    await Promise.all(released);
  }

  async dropSubscription(user: string, sender: string): Promise<void> {
    const map = this.subscriptions.get(user);
    const subscription = map?.get(sender);
    if (!map || !subscription) return;
    map.delete(sender);
    if (map.size === 0) this.subscriptions.delete(user);
    await subscription.endpoint.release();
  }

  /** Releases every subscription `user` holds. */
  async dropSubscriptionsOf(user: string): Promise<void> {
    const mine = this.subscriptions.get(user);
    if (!mine) return;
    const endpoints = [...mine.values()].map((subscription) => subscription.endpoint);
    this.subscriptions.delete(user);
    await Promise.all(endpoints.map((endpoint) => endpoint.release()));
  }

  /** Forgets everything (nothing released: the pipeline goes, or is gone, with it). */
  clear(): void {
    this.publishers.clear();
    this.subscriptions.clear();
  }
}
