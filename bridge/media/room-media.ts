/**
 * One room's media graph (DESIGN §5), driven by the bridge protocol's
 * commands:
 * - one MediaPipeline, on the KMS chosen when it is created, for as long as
 *   anyone has media; released when the last user's media goes;
 * - per publisher `WebRtcEndpoint → [filters] → PassThrough`, and with
 *   loopback the PassThrough back into the publisher's own endpoint;
 * - per subscription `PassThrough(sender) → WebRtcEndpoint(subscriber)`;
 * - trickle ICE both ways; candidates for an endpoint that does not exist
 *   yet (or has not processed its offer) wait in a queue;
 * - commands are idempotent: publishing or subscribing again replaces,
 *   releasing what is not there is fine.
 *
 * Commands of one user run one after another; different users run in
 * parallel. `releaseRoom` and a lost media server cut everything at once
 * (the epoch changes) and commands still running clean up after themselves.
 */
import { RoomCode, rpcError, type ErrorCode } from "../../protocol/errors.ts";
import type { FilterName, MediaEvent, MediaOp, MediaResult, mediaCommandParams } from "../../protocol/bridge.ts";
import { RpcRequestError } from "../../protocol/rpc-peer.ts";
import type { HatConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import type { KmsPool, KmsSlot } from "./kms-pool.ts";
import { type Bandwidth, type IceCandidate, type MediaElement, MediaServerError, type Pipeline, type WebRtcEndpoint } from "./media-server.ts";
import type { z } from "zod";

/**
 * The original's limits (kurento-room-sdk MediaEndpoint, set on every
 * WebRtcEndpoint it creates): video 300–600 kbps both ways.
 */
export const ORIGINAL_BANDWIDTH: Bandwidth = {
  maxVideoRecvKbps: 600,
  minVideoRecvKbps: 300,
  maxVideoSendKbps: 600,
  minVideoSendKbps: 300,
};

/** Candidates kept per endpoint while it does not exist yet. */
const MAX_QUEUED_CANDIDATES = 100;

type Params<K extends MediaOp> = z.infer<(typeof mediaCommandParams)[K]>;

interface Publisher {
  readonly endpoint: WebRtcEndpoint;
  readonly passThrough: MediaElement;
  /** In chain order: endpoint → filters[0] → … → passThrough. */
  readonly filters: Array<{ name: FilterName; element: MediaElement }>;
  /** ICE candidates go straight to the endpoint once its offer is processed. */
  ready: boolean;
}

interface Subscription {
  readonly endpoint: WebRtcEndpoint;
  ready: boolean;
}

export interface RoomMediaOptions {
  readonly room: string;
  readonly pool: KmsPool;
  readonly hat: HatConfig;
  readonly bandwidth?: Bandwidth;
  readonly emit: (event: MediaEvent) => void;
  readonly log: Logger;
  /** The room's pipeline was created or released (the bridge reports its load). */
  readonly onPipelineChange?: () => void;
}

export interface RoomMediaStats {
  readonly pipeline: boolean;
  readonly kms: string | null;
  readonly publishers: number;
  readonly subscriptions: number;
  readonly endpoints: number;
  readonly queuedCandidates: number;
}

class Superseded extends Error {}

export class RoomMedia {
  readonly room: string;
  private readonly options: RoomMediaOptions;
  private slot: KmsSlot | null = null;
  private pipeline: Pipeline | null = null;
  private pipelineTask: Promise<Pipeline> | null = null;
  private readonly publishers = new Map<string, Publisher>();
  /** subscriber → sender → subscription */
  private readonly subscriptions = new Map<string, Map<string, Subscription>>();
  private readonly iceQueues = new Map<string, IceCandidate[]>();
  private readonly locks = new Map<string, Promise<unknown>>();
  /**
   * Endpoints (queue keys) with a publish or subscribe waiting or running that
   * has not processed its offer yet: their candidates are queued meanwhile,
   * even if an older endpoint of the same name still exists.
   */
  private readonly negotiating = new Map<string, number>();
  private epoch = 0;
  private inFlight = 0;

  constructor(options: RoomMediaOptions) {
    this.room = options.room;
    this.options = options;
  }

  get kmsUri(): string | null {
    return this.slot?.uri ?? null;
  }

  /** The KMS slot this room's pipeline lives on, if any. */
  get pinnedSlot(): KmsSlot | null {
    return this.slot;
  }

  stats(): RoomMediaStats {
    let subscriptions = 0;
    for (const map of this.subscriptions.values()) subscriptions += map.size;
    let queued = 0;
    for (const queue of this.iceQueues.values()) queued += queue.length;
    return {
      pipeline: this.pipeline !== null,
      kms: this.slot?.uri ?? null,
      publishers: this.publishers.size,
      subscriptions,
      endpoints: this.publishers.size + subscriptions,
      queuedCandidates: queued,
    };
  }

  /** Users the bridge holds media for. */
  heldUsers(): string[] {
    const users = new Set<string>(this.publishers.keys());
    for (const [user, map] of this.subscriptions) if (map.size) users.add(user);
    return [...users].sort();
  }

  get idle(): boolean {
    return this.publishers.size === 0 && [...this.subscriptions.values()].every((map) => map.size === 0) && this.inFlight === 0;
  }

  // ── commands ───────────────────────────────────────────────────────────────

  readonly handlers = {
    publish: (params) => this.negotiate(queueKey(params.user, params.user), (done) => this.command(params.user, () => this.publish(params, done))),
    subscribe: (params) => this.negotiate(queueKey(params.user, params.sender), (done) => this.command(params.user, () => this.subscribe(params, done))),
    addIceCandidate: (params) => this.addIceCandidate(params),
    unpublish: (params) => this.command(params.user, () => this.unpublish(params.user)),
    unsubscribe: (params) => this.command(params.user, () => this.unsubscribe(params.user, params.sender)),
    releaseUser: (params) => this.command(params.user, () => this.releaseUser(params.user)),
    releaseRoom: (params) => this.releaseRoom(params.reason),
    applyFilter: (params) => this.command(params.user, () => this.applyFilter(params.user, params.filter)),
    removeFilter: (params) => this.command(params.user, () => this.removeFilter(params.user, params.filter)),
    sync: (params) => this.sync(params.users),
  } satisfies { [K in MediaOp]: (params: Params<K>) => Promise<MediaResult<K>> };

  /** Marks `key` as negotiating until `done` (idempotent) is called or the command ends. */
  private async negotiate<T>(key: string, run: (done: () => void) => Promise<T>): Promise<T> {
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

  /** Runs `work` after the user's earlier commands, counting it as in flight. */
  private async command<T>(user: string, work: () => Promise<T>): Promise<T> {
    this.inFlight += 1;
    const previous = this.locks.get(user) ?? Promise.resolve();
    const run = previous.then(work, work);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(user, settled);
    try {
      return await run;
    } catch (error) {
      throw toRpcError(error);
    } finally {
      if (this.locks.get(user) === settled) this.locks.delete(user);
      this.inFlight -= 1;
      this.releasePipelineIfIdle();
    }
  }

  private async publish(params: Params<"publish">, negotiated: () => void): Promise<MediaResult<"publish">> {
    const { user } = params;
    await this.dropPublisher(user);
    const epoch = this.epoch;
    const created: MediaElement[] = [];
    try {
      const pipeline = await this.ensurePipeline(user);
      this.check(epoch);
      const endpoint = await pipeline.createWebRtcEndpoint({ dataChannels: params.dataChannels });
      created.push(endpoint);
      this.check(epoch);
      const passThrough = await pipeline.createPassThrough();
      created.push(passThrough);
      this.check(epoch);
      const record: Publisher = { endpoint, passThrough, filters: [], ready: false };
      this.watchEndpoint(endpoint, user, user, () => this.publishers.get(user) === record);
      passThrough.onError((error) => {
        if (this.publishers.get(user) === record) this.options.emit({ event: "mediaError", user, error });
      });
      await this.applyBandwidth(endpoint);
      await endpoint.connect(passThrough);
      if (params.loopback) await passThrough.connect(endpoint);
      this.check(epoch);
      this.publishers.set(user, record);
      const sdpAnswer = await endpoint.processOffer(params.sdpOffer);
      this.check(epoch, () => this.publishers.get(user) === record);
      record.ready = true;
      negotiated();
      await this.flushCandidates(user, user, endpoint);
      await endpoint.gatherCandidates();
      this.check(epoch, () => this.publishers.get(user) === record);
      return { sdpAnswer };
    } catch (error) {
      if (created[0] && this.publishers.get(user)?.endpoint === created[0]) this.publishers.delete(user);
      this.iceQueues.delete(queueKey(user, user));
      await Promise.all(created.map((element) => element.release()));
      throw error;
    }
  }

  private async subscribe(params: Params<"subscribe">, negotiated: () => void): Promise<MediaResult<"subscribe">> {
    const { user, sender } = params;
    if (user === sender) {
      throw new RpcRequestError(rpcError(RoomCode.MEDIA_ENDPOINT, `${user} cannot subscribe to itself: ask for loopback when publishing`));
    }
    await this.dropSubscription(user, sender);
    const publisher = this.publishers.get(sender);
    if (!publisher) {
      throw new RpcRequestError(rpcError(RoomCode.MEDIA_ENDPOINT, `${sender} has no published media to subscribe to`));
    }
    const epoch = this.epoch;
    const created: MediaElement[] = [];
    try {
      const pipeline = await this.ensurePipeline(user);
      this.check(epoch);
      const endpoint = await pipeline.createWebRtcEndpoint({ dataChannels: false });
      created.push(endpoint);
      this.check(epoch);
      const record: Subscription = { endpoint, ready: false };
      this.watchEndpoint(endpoint, user, sender, () => this.subscriptions.get(user)?.get(sender) === record);
      await this.applyBandwidth(endpoint);
      const source = this.publishers.get(sender);
      if (source !== publisher) {
        throw new RpcRequestError(rpcError(RoomCode.MEDIA_ENDPOINT, `${sender} stopped publishing meanwhile`));
      }
      await publisher.passThrough.connect(endpoint);
      this.check(epoch);
      let map = this.subscriptions.get(user);
      if (!map) this.subscriptions.set(user, (map = new Map()));
      map.set(sender, record);
      const sdpAnswer = await endpoint.processOffer(params.sdpOffer);
      this.check(epoch, () => this.subscriptions.get(user)?.get(sender) === record);
      record.ready = true;
      negotiated();
      await this.flushCandidates(user, sender, endpoint);
      await endpoint.gatherCandidates();
      this.check(epoch, () => this.subscriptions.get(user)?.get(sender) === record);
      return { sdpAnswer };
    } catch (error) {
      const map = this.subscriptions.get(user);
      if (map && created[0] && map.get(sender)?.endpoint === created[0]) {
        map.delete(sender);
        if (map.size === 0) this.subscriptions.delete(user);
      }
      this.iceQueues.delete(queueKey(user, sender));
      await Promise.all(created.map((element) => element.release()));
      throw error;
    }
  }

  private async addIceCandidate(params: Params<"addIceCandidate">): Promise<MediaResult<"addIceCandidate">> {
    const { user, endpoint: name } = params;
    const candidate: IceCandidate = { candidate: params.candidate, sdpMid: params.sdpMid ?? null, sdpMLineIndex: params.sdpMLineIndex };
    const own = name === user;
    const target = own ? this.publishers.get(user) : this.subscriptions.get(user)?.get(name);
    const key = queueKey(user, name);
    if (!target || !target.ready || this.negotiating.has(key)) {
      const queue = this.iceQueues.get(key) ?? [];
      queue.push(candidate);
      if (queue.length > MAX_QUEUED_CANDIDATES) queue.shift();
      this.iceQueues.set(key, queue);
      return {};
    }
    try {
      await target.endpoint.addIceCandidate(candidate);
    } catch (error) {
      throw toRpcError(error);
    }
    return {};
  }

  private async unpublish(user: string): Promise<MediaResult<"unpublish">> {
    await this.dropPublisher(user);
    return {};
  }

  private async unsubscribe(user: string, sender: string): Promise<MediaResult<"unsubscribe">> {
    await this.dropSubscription(user, sender);
    this.iceQueues.delete(queueKey(user, sender));
    return {};
  }

  private async releaseUser(user: string): Promise<MediaResult<"releaseUser">> {
    await this.dropPublisher(user);
    const mine = this.subscriptions.get(user);
    if (mine) {
      const endpoints = [...mine.values()].map((subscription) => subscription.endpoint);
      this.subscriptions.delete(user);
      await Promise.all(endpoints.map((endpoint) => endpoint.release()));
    }
    for (const key of [...this.iceQueues.keys()]) if (key.startsWith(`${user}\u0000`)) this.iceQueues.delete(key);
    return {};
  }

  /** Everyone left or the room closed: the pipeline goes, with everything in it. */
  async releaseRoom(reason?: string): Promise<MediaResult<"releaseRoom">> {
    this.epoch += 1;
    const pipeline = this.pipeline;
    const slot = this.slot;
    this.forgetGraph();
    if (pipeline && slot) {
      this.options.log.info("room media released", { room: this.room, ...(reason ? { reason } : {}) });
      this.options.pool.free(slot);
      this.options.onPipelineChange?.();
      await pipeline.release();
    }
    return {};
  }

  private async applyFilter(user: string, filter: FilterName): Promise<MediaResult<"applyFilter">> {
    const publisher = this.publishers.get(user);
    if (!publisher) throw new RpcRequestError(rpcError(RoomCode.MEDIA_ENDPOINT, `${user} is not publishing: there is no video to put a filter on`));
    if (publisher.filters.some((entry) => entry.name === filter)) return {};
    const slot = this.slot;
    const pipeline = this.pipeline;
    if (!slot || !pipeline) throw new RpcRequestError(rpcError(RoomCode.MEDIA_ENDPOINT, `${user}'s media has no pipeline`));
    if (!slot.server.supportsFilters) {
      throw new RpcRequestError(rpcError(RoomCode.MEDIA_GENERIC, `The media server cannot apply filters: ${slot.uri} has no FaceOverlayFilter (the embedded media server has no filters; use a Kurento Media Server for the hat)`));
    }
    const epoch = this.epoch;
    let element: MediaElement;
    try {
      element = await pipeline.createFaceOverlayFilter({ imageUrl: this.options.hat.url, offsetX: this.options.hat.offsetX, offsetY: this.options.hat.offsetY, width: this.options.hat.width, height: this.options.hat.height });
    } catch (error) {
      if (error instanceof MediaServerError && error.failure === "unsupported") {
        throw new RpcRequestError(rpcError(RoomCode.MEDIA_GENERIC, `The media server cannot apply filters: ${error.message}`));
      }
      throw error;
    }
    try {
      this.check(epoch, () => this.publishers.get(user) === publisher);
      element.onError((error) => {
        if (this.publishers.get(user) === publisher) this.options.emit({ event: "mediaError", user, error });
      });
      const previous = publisher.filters.at(-1)?.element ?? publisher.endpoint;
      // Insert before the PassThrough: connect the new links first so subscribers never see a gap.
      await previous.connect(element);
      await element.connect(publisher.passThrough);
      await previous.disconnect(publisher.passThrough);
      this.check(epoch, () => this.publishers.get(user) === publisher);
      publisher.filters.push({ name: filter, element });
      return {};
    } catch (error) {
      await element.release();
      throw error;
    }
  }

  private async removeFilter(user: string, filter: FilterName): Promise<MediaResult<"removeFilter">> {
    const publisher = this.publishers.get(user);
    if (!publisher) return {};
    const index = publisher.filters.findIndex((entry) => entry.name === filter);
    if (index < 0) return {};
    const entry = publisher.filters[index]!;
    const previous = index === 0 ? publisher.endpoint : publisher.filters[index - 1]!.element;
    const next = publisher.filters[index + 1]?.element ?? publisher.passThrough;
    await previous.connect(next);
    publisher.filters.splice(index, 1);
    await entry.element.release();
    return {};
  }

  /** After a (re)attach: drop the media of users the room no longer has. */
  private async sync(users: readonly string[]): Promise<MediaResult<"sync">> {
    const keep = new Set(users);
    const stale = new Set<string>();
    for (const user of this.heldUsers()) if (!keep.has(user)) stale.add(user);
    for (const key of this.iceQueues.keys()) {
      const user = key.slice(0, key.indexOf("\u0000"));
      if (!keep.has(user)) stale.add(user);
    }
    await Promise.all([...stale].map((user) => this.command(user, () => this.releaseUser(user))));
    return { held: this.heldUsers() };
  }

  // ── media server events ───────────────────────────────────────────────────

  /** The room's KMS lost its media: forget the graph (nothing to release) and tell the room. */
  mediaLost(reason: string): void {
    if (!this.pipeline && !this.pipelineTask) return;
    const users = this.heldUsers();
    this.epoch += 1;
    this.forgetGraph();
    this.options.onPipelineChange?.();
    this.options.log.warn("room media lost", { room: this.room, users: users.length, reason });
    this.options.emit({ event: "mediaLost", error: reason });
  }

  // ── helpers ───────────────────────────────────────────────────────────────

  private forgetGraph(): void {
    this.pipeline = null;
    this.pipelineTask = null;
    this.slot = null;
    this.publishers.clear();
    this.subscriptions.clear();
    this.iceQueues.clear();
  }

  private check(epoch: number, stillCurrent?: () => boolean): void {
    if (epoch !== this.epoch) throw new Superseded("the room's media was released meanwhile");
    if (stillCurrent && !stillCurrent()) throw new Superseded("replaced by a later command meanwhile");
  }

  private ensurePipeline(user: string): Promise<Pipeline> {
    if (this.pipelineTask) return this.pipelineTask;
    const epoch = this.epoch;
    const task = this.options.pool.allocate(user).then(async ({ slot, pipeline }) => {
      if (epoch !== this.epoch) {
        this.options.pool.free(slot);
        await pipeline.release();
        throw new Superseded("the room's media was released meanwhile");
      }
      this.slot = slot;
      this.pipeline = pipeline;
      pipeline.onError((error) => {
        if (this.pipeline === pipeline) this.options.emit({ event: "mediaError", error });
      });
      this.options.log.info("pipeline created", { room: this.room, kms: slot.uri, user });
      this.options.onPipelineChange?.();
      return pipeline;
    });
    task.catch(() => {
      if (this.pipelineTask === task) this.pipelineTask = null;
    });
    this.pipelineTask = task;
    return task;
  }

  private releasePipelineIfIdle(): void {
    // A pipeline still being created belongs to a command in flight, which comes back here.
    if (!this.idle || !this.pipeline) return;
    const pipeline = this.pipeline;
    const slot = this.slot;
    this.pipeline = null;
    this.pipelineTask = null;
    this.slot = null;
    this.iceQueues.clear();
    if (slot) this.options.pool.free(slot);
    this.options.log.info("pipeline released (no media left)", { room: this.room });
    this.options.onPipelineChange?.();
    void pipeline.release();
  }

  private watchEndpoint(endpoint: WebRtcEndpoint, user: string, name: string, current: () => boolean): void {
    endpoint.onIceCandidate((candidate) => {
      if (current()) this.options.emit({ event: "iceCandidate", user, endpoint: name, candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex });
    });
    endpoint.onMediaState((state) => {
      if (current()) this.options.emit({ event: "mediaState", user, endpoint: name, state });
    });
    endpoint.onError((error) => {
      if (current()) this.options.emit({ event: "mediaError", user, error });
    });
  }

  private async applyBandwidth(endpoint: WebRtcEndpoint): Promise<void> {
    try {
      await endpoint.setBandwidth(this.options.bandwidth ?? ORIGINAL_BANDWIDTH);
    } catch (error) {
      // Limits are advice; a server without them still carries media.
      this.options.log.warn("could not set the bandwidth limits", { room: this.room, error: error instanceof Error ? error.message : String(error) });
    }
  }

  private async flushCandidates(user: string, name: string, endpoint: WebRtcEndpoint): Promise<void> {
    const key = queueKey(user, name);
    const queue = this.iceQueues.get(key);
    if (!queue) return;
    this.iceQueues.delete(key);
    for (const candidate of queue) {
      try {
        await endpoint.addIceCandidate(candidate);
      } catch (error) {
        this.options.log.debug("queued ICE candidate refused", { room: this.room, user, endpoint: name, error: error instanceof Error ? error.message : String(error) });
      }
    }
  }

  /** Releases the user's publisher and everyone's subscriptions to it. */
  private async dropPublisher(user: string): Promise<void> {
    const publisher = this.publishers.get(user);
    this.iceQueues.delete(queueKey(user, user));
    if (!publisher) return;
    this.publishers.delete(user);
    const released: Array<Promise<void>> = [];
    for (const [subscriber, map] of this.subscriptions) {
      const subscription = map.get(user);
      if (!subscription) continue;
      map.delete(user);
      this.iceQueues.delete(queueKey(subscriber, user));
      released.push(subscription.endpoint.release());
      if (map.size === 0) this.subscriptions.delete(subscriber);
    }
    released.push(publisher.endpoint.release(), publisher.passThrough.release(), ...publisher.filters.map((entry) => entry.element.release()));
    await Promise.all(released);
  }

  private async dropSubscription(user: string, sender: string): Promise<void> {
    const map = this.subscriptions.get(user);
    const subscription = map?.get(sender);
    if (!map || !subscription) return;
    map.delete(sender);
    if (map.size === 0) this.subscriptions.delete(user);
    await subscription.endpoint.release();
  }
}

function queueKey(user: string, endpoint: string): string {
  return `${user}\u0000${endpoint}`;
}

const FAILURE_CODES: Record<MediaServerError["failure"], ErrorCode> = {
  sdp: RoomCode.MEDIA_SDP,
  ice: RoomCode.MEDIA_WEBRTC_ENDPOINT,
  unsupported: RoomCode.MEDIA_GENERIC,
  unreachable: RoomCode.MEDIA_GENERIC,
  timeout: RoomCode.MEDIA_GENERIC,
  gone: RoomCode.MEDIA_ENDPOINT,
  other: RoomCode.MEDIA_GENERIC,
};

/** Any failure as the JSON-RPC error the room gets (media codes of errors.ts). */
export function toRpcError(error: unknown): RpcRequestError {
  if (error instanceof RpcRequestError) return error;
  if (error instanceof MediaServerError) return new RpcRequestError(rpcError(FAILURE_CODES[error.failure], error.message));
  if (error instanceof Superseded) return new RpcRequestError(rpcError(RoomCode.MEDIA_GENERIC, `Media command abandoned: ${error.message}`));
  return new RpcRequestError(rpcError(RoomCode.MEDIA_GENERIC, error instanceof Error ? error.message : String(error)));
}
