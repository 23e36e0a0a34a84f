import { randomUUID } from "node:crypto";
import { z } from "zod";
import { KurentoError } from "../errors.ts";
import { parseParams } from "../protocol.ts";
import type { ObjectRegistry } from "../registry.ts";
import type { WebRtcSettings } from "../webrtc-config.ts";

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

export interface ObjectOwner {
  forget(object: MediaObject): void;
}

export type Operation = (rawParams: Record<string, unknown> | undefined) => unknown;
export type OperationTable = Record<string, Operation>;

/** Binds an operation's zod schema to its implementation; the name is only for error messages. */
export function operation<S extends z.ZodType>(name: string, schema: S, run: (params: z.infer<S>) => unknown): Operation {
  return (raw) => run(parseParams(schema, raw, name));
}

export const noParams = z.object({}).loose();

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

  private name: string;
  private readonly tags = new Map<string, string>();
  private sendTagsInEvents = false;
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

  /** Each class extends its parent's table; `satisfies` in subclasses keeps names checked. */
  operations(): OperationTable {
    return {
      getName: operation("getName", noParams, () => this.name),
      setName: operation("setName", z.object({ name: z.string().max(1000) }), ({ name }) => {
        this.name = name;
      }),
      getCreationTime: operation("getCreationTime", noParams, () => this.creationTime),
      getParent: operation("getParent", noParams, () => this.parent?.id ?? null),
      getMediaPipeline: operation("getMediaPipeline", noParams, () => this.pipeline().id),
      getChildren: operation("getChildren", noParams, () => [...this.children].map((child) => child.id)),
      getChilds: operation("getChilds", noParams, () => [...this.children].map((child) => child.id)),
      getSendTagsInEvents: operation("getSendTagsInEvents", noParams, () => this.sendTagsInEvents),
      setSendTagsInEvents: operation("setSendTagsInEvents", z.object({ sendTagsInEvents: z.boolean() }), ({ sendTagsInEvents }) => {
        this.sendTagsInEvents = sendTagsInEvents;
      }),
      addTag: operation("addTag", z.object({ key: z.string().max(1000), value: z.string().max(10_000) }), ({ key, value }) => {
        this.tags.set(key, value);
      }),
      removeTag: operation("removeTag", z.object({ key: z.string() }), ({ key }) => {
        this.tags.delete(key);
      }),
      getTag: operation("getTag", z.object({ key: z.string() }), ({ key }) => {
        const value = this.tags.get(key);
        if (value === undefined) throw new KurentoError("MEDIA_OBJECT_TAG_KEY_NOT_FOUND", `Tag "${key}" not found on ${this.id}`);
        return value;
      }),
      getTags: operation("getTags", noParams, () => this.tagList()),
    };
  }

  pipeline(): MediaObject {
    let object: MediaObject = this;
    while (object.parent) object = object.parent;
    return object;
  }

  subscribe(type: string, sink: EventSink): string {
    if (!this.events.includes(type)) {
      throw new KurentoError("MEDIA_OBJECT_EVENT_NOT_SUPPORTED", `${this.typeName} has no event "${type}" (it has: ${this.events.join(", ")})`);
    }
    const subscriptionId = randomUUID();
    this.subscriptions.set(subscriptionId, { type, sink });
    return subscriptionId;
  }

  unsubscribe(subscriptionId: string): boolean {
    return this.subscriptions.delete(subscriptionId);
  }

  /** Drops a session's subscriptions when the session ends. */
  dropSubscriptionsOf(sink: EventSink): void {
    for (const [subscriptionId, subscription] of this.subscriptions) {
      if (subscription.sink === sink) this.subscriptions.delete(subscriptionId);
    }
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
    const frame = { jsonrpc: "2.0", method: "onEvent", params: { value: { data, object: this.id, type } } };
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
    for (const [subscriptionId, subscription] of this.subscriptions) subscription.sink.forgetSubscription(subscriptionId);
    this.subscriptions.clear();
  }

  protected abstract dispose(): Promise<void> | void;

  private tagList(): Array<{ key: string; value: string }> {
    return [...this.tags].map(([key, value]) => ({ key, value }));
  }
}
