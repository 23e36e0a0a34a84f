import { randomUUID } from "node:crypto";
import { z } from "zod";
import { KurentoError } from "../errors.ts";
import { eventFrame } from "../protocol.ts";
import type { ObjectRegistry } from "../registry.ts";
import type { WebRtcSettings } from "../webrtc-config.ts";
import { type Caller, noParams, operation, operationTable, type RawParams } from "./operations.ts";

/** What every media object can reach: the registry and the server's settings. */
export interface MediaServerContext {
  readonly registry: ObjectRegistry;
  readonly webrtc: WebRtcSettings;
  readonly log: (message: string) => void;
}

/** A session as objects see it: somewhere to send events, something that owns objects. */
export interface EventSink {
  readonly id: string;
  notify(frame: unknown): void;
  forgetSubscription(subscriptionId: string): void;
}

/** The session that created an object: the only one that may use it. */
export interface ObjectOwner extends Caller {
  forget(object: MediaObject): void;
}

interface Subscription {
  type: string;
  sink: EventSink;
}

export abstract class MediaObject {
  abstract readonly typeName: string;
  /** `kurento.*` types this one derives from, nearest first, as `describe` reports them. */
  abstract readonly hierarchy: readonly string[];
  abstract readonly events: readonly string[];

  readonly id: string;
  readonly context: MediaServerContext;
  readonly parent: MediaObject | undefined;
  readonly children = new Set<MediaObject>();
  readonly creationTime = Math.floor(Date.now() / 1000);
  owner: ObjectOwner | undefined;
  released = false;
  /** KMS's `name` property; the id until set. */
  name: string;
  /** Whether events carry the object's tags (KMS's `sendTagsInEvents` property). */
  sendTagsInEvents = false;

  private readonly tags = new Map<string, string>();
  private readonly subscriptions = new Map<string, Subscription>();

  constructor(context: MediaServerContext, id: string, parent: MediaObject | undefined) {
    this.context = context;
    this.id = id;
    this.parent = parent;
    this.name = id;
  }

  /** KMS ids: `<uuid>_kurento.MediaPipeline`, children `<pipelineId>/<uuid>_kurento.<Type>`; kurento-client's cache relies on the prefix. */
  static childId(parent: MediaObject | undefined, typeName: string): string {
    const own = `${randomUUID()}_kurento.${typeName}`;
    return parent ? `${parent.id}/${own}` : own;
  }

  get qualifiedType(): string {
    return `kurento.${this.typeName}`;
  }

  /** Runs a Kurento operation on this object for `caller`; each concrete type dispatches through its own table. */
  abstract invoke(operation: string, params: RawParams, caller?: Caller): unknown;

  pipeline(): MediaObject {
    let object: MediaObject = this;
    while (object.parent) object = object.parent;
    return object;
  }

  subscribe(type: string, sink: EventSink): string {
    if (!this.events.includes(type)) {
      throw new KurentoError(
        "MEDIA_OBJECT_EVENT_NOT_SUPPORTED",
        `${this.typeName} has no event "${type}" (it has: ${this.events.join(", ")})`,
      );
    }
    const subscriptionId = randomUUID();
    this.subscriptions.set(subscriptionId, { type, sink });
    return subscriptionId;
  }

  unsubscribe(subscriptionId: string): boolean {
    return this.subscriptions.delete(subscriptionId);
  }

  emitEvent(type: string, fields: Record<string, unknown> = {}): void {
    if (this.released) return;
    const now = Date.now();
    const data = {
      source: this.id,
      tags: this.sendTagsInEvents ? this.tagList() : [],
      timestamp: String(Math.floor(now / 1000)),
      timestampMillis: String(now),
      type,
      ...fields,
    };
    const frame = eventFrame(this.id, type, data);
    for (const subscription of this.subscriptions.values()) {
      if (subscription.type === type) subscription.sink.notify(frame);
    }
  }

  /** Releases children first, then frees this object's own resources; safe to call twice. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await Promise.all([...this.children].map((child) => child.release()));
    try {
      await this.dispose();
    } catch (error) {
      this.context.log(`releasing ${this.id}: ${error instanceof Error ? error.message : String(error)}`);
    }
    this.parent?.children.delete(this);
    this.context.registry.remove(this);
    this.owner?.forget(this);
    for (const [subscriptionId, subscription] of this.subscriptions)
      subscription.sink.forgetSubscription(subscriptionId);
    this.subscriptions.clear();
  }

  protected abstract dispose(): Promise<void> | void;

  setTag(key: string, value: string): void {
    this.tags.set(key, value);
  }

  removeTag(key: string): void {
    this.tags.delete(key);
  }

  tag(key: string): string {
    const value = this.tags.get(key);
    if (value === undefined) {
      throw new KurentoError("MEDIA_OBJECT_TAG_KEY_NOT_FOUND", `Tag "${key}" not found on ${this.id}`);
    }
    return value;
  }

  tagList(): Array<{ key: string; value: string }> {
    return [...this.tags].map(([key, value]) => ({ key, value }));
  }
}

const childIds = (object: MediaObject) => [...object.children].map((child) => child.id);

/** Operations every media object has (kurento.MediaObject); built once, extended by each subtype's table. */
export const MEDIA_OBJECT_OPERATIONS = operationTable<MediaObject>(undefined, {
  getName: operation(noParams, (object) => object.name),
  setName: operation(z.object({ name: z.string().max(1000) }), (object, { name }) => {
    object.name = name;
  }),
  getCreationTime: operation(noParams, (object) => object.creationTime),
  getParent: operation(noParams, (object) => object.parent?.id ?? null),
  getMediaPipeline: operation(noParams, (object) => object.pipeline().id),
  getChildren: operation(noParams, childIds),
  getChilds: operation(noParams, childIds),
  getSendTagsInEvents: operation(noParams, (object) => object.sendTagsInEvents),
  setSendTagsInEvents: operation(z.object({ sendTagsInEvents: z.boolean() }), (object, { sendTagsInEvents }) => {
    object.sendTagsInEvents = sendTagsInEvents;
  }),
  addTag: operation(z.object({ key: z.string().max(1000), value: z.string().max(10_000) }), (object, { key, value }) =>
    object.setTag(key, value),
  ),
  removeTag: operation(z.object({ key: z.string() }), (object, { key }) => {
    object.removeTag(key);
  }),
  getTag: operation(z.object({ key: z.string() }), (object, { key }) => object.tag(key)),
  getTags: operation(noParams, (object) => object.tagList()),
});
