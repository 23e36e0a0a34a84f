/**
 * One room's media graph, driven by the bridge protocol's commands
 * (protocol/bridge.ts):
 * - one MediaPipeline, on the KMS chosen when it is created, for as long as
 *   anyone has media; released when the last user's media goes;
 * - per published stream (a user's webcam, screen…)
 *   `WebRtcEndpoint → [filters] → PassThrough`, and with loopback the
 *   PassThrough back into the publisher's own endpoint;
 * - per subscription `PassThrough(sender's stream) → WebRtcEndpoint(subscriber)`;
 * - trickle ICE both ways; candidates for an endpoint that does not exist
 *   yet (or has not processed its offer) wait in a queue (room-ice.ts);
 * - commands are idempotent: publishing or subscribing again replaces,
 *   releasing what is not there is fine.
 *
 * Commands of one user run one after another; different users run in
 * parallel. `releaseRoom` and a lost media server cut everything at once
 * (the epoch changes) and commands still running clean up after themselves.
 * Who holds what is room-graph.ts; the hat is room-filters.ts; recordings
 * are room-recording.ts; how failures reach the room is room-errors.ts.
 */
import type { z } from "zod";
import type { MediaEvent, MediaOp, MediaResult, mediaCommandParams } from "../../protocol/bridge.ts";
import { streamIdOf, WEBCAM_STREAM } from "../../protocol/room.ts";
import type { HatConfig, MediaIceConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import type { KmsPool, KmsSlot } from "./kms-pool.ts";
import type { Bandwidth, IceCandidate, MediaElement, Pipeline, WebRtcEndpoint } from "./media-server.ts";
import { endpointError, Superseded, toRpcError } from "./room-errors.ts";
import { applyFilter, type FilterContext, removeFilter } from "./room-filters.ts";
import { type Publisher, RoomGraph, type Subscription } from "./room-graph.ts";
import { type RecordingSink, RoomRecording } from "./room-recording.ts";
import { sendsSimulcast, sentKinds } from "./sdp-kinds.ts";
import {
  applyBandwidth,
  applyIceServers,
  ORIGINAL_BANDWIDTH,
  publisherBandwidth,
  watchEndpoint,
} from "./room-endpoints.ts";
import { IceQueues } from "./room-ice.ts";

/** Where it always was (the benchmark imports it from here). */
export { ORIGINAL_BANDWIDTH };

type Params<K extends MediaOp> = z.infer<(typeof mediaCommandParams)[K]>;

export interface RoomMediaOptions {
  readonly room: string;
  readonly pool: KmsPool;
  readonly hat: HatConfig;
  readonly bandwidth?: Bandwidth;
  /** STUN/TURN for every endpoint (KMS_STUN_*, KMS_TURN_*), and the bridge id TURN REST user names carry. */
  readonly ice?: { readonly config: MediaIceConfig | null; readonly bridgeId: string };
  readonly emit: (event: MediaEvent) => void;
  readonly log: Logger;
  /** The room's pipeline was created or released (the bridge reports its load). */
  readonly onPipelineChange?: () => void;
  /** Where `record` writes and what delivers the files; absent: `record` is refused (`recordingUnavailable` says why). */
  readonly recordings?: RecordingSink;
  readonly recordingUnavailable?: string;
}

export interface RoomMediaStats {
  readonly pipeline: boolean;
  readonly kms: string | null;
  readonly publishers: number;
  readonly subscriptions: number;
  readonly endpoints: number;
  readonly queuedCandidates: number;
  /** Files being recorded (or ending) now. */
  readonly recordings: number;
}

export class RoomMedia {
  readonly room: string;
  private readonly options: RoomMediaOptions;
  private slot: KmsSlot | null = null;
  private pipeline: Pipeline | null = null;
  private pipelineTask: Promise<Pipeline> | null = null;
  private readonly ice = new IceQueues();
  private readonly graph = new RoomGraph(this.ice);
  private readonly locks = new Map<string, Promise<unknown>>();
  private epoch = 0;
  private inFlight = 0;
  private readonly filters: FilterContext;
  private readonly recording: RoomRecording;

  constructor(options: RoomMediaOptions) {
    this.room = options.room;
    this.options = options;
    this.recording = new RoomRecording({
      room: options.room,
      sink: options.recordings ?? null,
      ...(options.recordingUnavailable === undefined ? {} : { unavailable: options.recordingUnavailable }),
      publisher: (user, stream) => this.graph.publishers.get(streamIdOf(user, stream)),
      pipeline: () => this.pipeline,
      log: options.log,
      onSettled: () => this.releasePipelineIfIdle(),
    });
    this.filters = {
      graph: this.graph,
      hat: options.hat,
      placement: () => (this.slot && this.pipeline ? { slot: this.slot, pipeline: this.pipeline } : null),
      guard: () => {
        const epoch = this.epoch;
        return (stillCurrent) => this.check(epoch, stillCurrent);
      },
      emit: options.emit,
    };
  }

  /** The KMS slot this room's pipeline lives on, if any. */
  get pinnedSlot(): KmsSlot | null {
    return this.slot;
  }

  stats(): RoomMediaStats {
    const subscriptions = this.graph.subscriptionCount;
    return {
      pipeline: this.pipeline !== null,
      kms: this.slot?.uri ?? null,
      publishers: this.graph.publishers.size,
      subscriptions,
      endpoints: this.graph.publishers.size + subscriptions,
      queuedCandidates: this.ice.size,
      recordings: this.recording.active,
    };
  }

  /** Users the bridge holds media for. */
  heldUsers(): string[] {
    return this.graph.heldUsers();
  }

  get idle(): boolean {
    // A file still ending needs its recorder, so the pipeline, until it is complete.
    return this.graph.empty && this.inFlight === 0 && this.recording.idle;
  }

  // ── commands ───────────────────────────────────────────────────────────────

  readonly handlers = {
    // ICE queues and the graph key endpoints by stream id (`<user>_<stream>`).
    publish: (params) =>
      this.ice.negotiate(params.user, streamIdOf(params.user, params.stream), (done) =>
        this.command(params.user, () => this.publish(params, done)),
      ),
    subscribe: (params) =>
      this.ice.negotiate(params.user, streamIdOf(params.sender, params.stream), (done) =>
        this.command(params.user, () => this.subscribe(params, done)),
      ),
    addIceCandidate: (params) => this.addIceCandidate(params),
    unpublish: (params) => this.command(params.user, () => this.unpublish(params.user, params.stream)),
    unsubscribe: (params) =>
      this.command(params.user, () => this.unsubscribe(params.user, streamIdOf(params.sender, params.stream))),
    // After the user's earlier commands: a subscribe in flight has its endpoint by then.
    setVideoQuality: (params) => this.command(params.user, () => this.setVideoQuality(params)),
    releaseUser: (params) => this.command(params.user, () => this.releaseUser(params.user)),
    releaseRoom: (params) => this.releaseRoom(params.reason),
    applyFilter: (params) => this.command(params.user, () => applyFilter(this.filters, params.user, params.filter)),
    removeFilter: (params) => this.command(params.user, () => removeFilter(this.graph, params.user, params.filter)),
    sync: (params) => this.sync(params.users),
    // After the user's earlier commands: a publish in flight is the stream to record.
    record: (params) => this.command(params.user, () => this.recording.record(params)),
    stopRecording: (params) => this.recording.stop(params.recording),
  } satisfies { [K in MediaOp]: (params: Params<K>) => Promise<MediaResult<K>> };

  /** Runs `work` after the user's earlier commands, counting it as in flight. */
  private async command<T>(user: string, work: () => Promise<T>): Promise<T> {
    this.inFlight += 1;
    const previous = this.locks.get(user) ?? Promise.resolve();
    const run = previous.then(work, work);
    const ignore = (): undefined => undefined;
    const settled = run.then(ignore, ignore);
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
    const stream = params.stream ?? WEBCAM_STREAM;
    const id = streamIdOf(user, stream);
    const { publishers } = this.graph;
    this.recording.endStream(user, stream, "the user published again");
    await this.graph.dropPublisher(id);
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
      const kinds = sentKinds(params.sdpOffer);
      const record: Publisher = { user, stream, endpoint, passThrough, filters: [], ready: false, kinds };
      const current = (): boolean => publishers.get(id) === record;
      // Every element of the chain carries the publisher's own stream.
      watchEndpoint(endpoint, { user, name: user, stream, current, emit: this.options.emit });
      passThrough.onError((error) => {
        if (current()) this.options.emit({ event: "mediaError", user, error, streams: [id] });
      });
      await this.bandwidth(endpoint, sendsSimulcast(params.sdpOffer));
      await this.iceServers(endpoint);
      await endpoint.connect(passThrough);
      if (params.loopback) await passThrough.connect(endpoint);
      this.check(epoch);
      publishers.set(id, record);
      const sdpAnswer = await endpoint.processOffer(params.sdpOffer);
      this.check(epoch, current);
      record.ready = true;
      negotiated();
      await this.flushCandidates(user, id, endpoint);
      await endpoint.gatherCandidates();
      this.check(epoch, current);
      return { sdpAnswer };
    } catch (error) {
      if (created[0] && publishers.get(id)?.endpoint === created[0]) publishers.delete(id);
      this.ice.drop(user, id);
      await Promise.all(created.map((element) => element.release()));
      throw error;
    }
  }

  private async subscribe(params: Params<"subscribe">, negotiated: () => void): Promise<MediaResult<"subscribe">> {
    const { user, sender } = params;
    const stream = params.stream ?? WEBCAM_STREAM;
    const id = streamIdOf(sender, stream);
    if (user === sender) throw endpointError(`${user} cannot subscribe to itself: ask for loopback when publishing`);
    await this.graph.dropSubscription(user, id);
    const publisher = this.graph.publishers.get(id);
    const what = stream === WEBCAM_STREAM ? "published media" : `stream '${stream}'`;
    if (!publisher) throw endpointError(`${sender} has no ${what} to subscribe to`);
    const epoch = this.epoch;
    let endpoint: WebRtcEndpoint | undefined;
    try {
      const pipeline = await this.ensurePipeline(user);
      this.check(epoch);
      endpoint = await pipeline.createWebRtcEndpoint({ dataChannels: false });
      this.check(epoch);
      const record: Subscription = { endpoint, ready: false };
      const current = (): boolean => this.graph.subscription(user, id) === record;
      watchEndpoint(endpoint, { user, name: sender, stream, current, emit: this.options.emit });
      await this.bandwidth(endpoint);
      await this.iceServers(endpoint);
      if (params.quality) await endpoint.setVideoQuality(params.quality);
      if (this.graph.publishers.get(id) !== publisher) {
        throw endpointError(`${sender} stopped publishing meanwhile`);
      }
      await publisher.passThrough.connect(endpoint);
      this.check(epoch);
      this.graph.addSubscription(user, id, record);
      const sdpAnswer = await endpoint.processOffer(params.sdpOffer);
      this.check(epoch, current);
      record.ready = true;
      negotiated();
      await this.flushCandidates(user, id, endpoint);
      await endpoint.gatherCandidates();
      this.check(epoch, current);
      return { sdpAnswer };
    } catch (error) {
      if (endpoint) this.graph.forgetSubscription(user, id, endpoint);
      this.ice.drop(user, id);
      await endpoint?.release();
      throw error;
    }
  }

  private async addIceCandidate(params: Params<"addIceCandidate">): Promise<MediaResult<"addIceCandidate">> {
    const { user, endpoint: name } = params;
    const candidate: IceCandidate = {
      candidate: params.candidate,
      sdpMid: params.sdpMid ?? null,
      sdpMLineIndex: params.sdpMLineIndex,
    };
    // The user's own name: one of its publishers; a sender's: the subscription to that sender's stream.
    const id = streamIdOf(name, params.stream);
    const target = name === user ? this.graph.publishers.get(id) : this.graph.subscription(user, id);
    if (this.ice.queueUnlessReady(user, id, target?.ready === true, candidate) || !target) return {};
    try {
      await target.endpoint.addIceCandidate(candidate);
    } catch (error) {
      throw toRpcError(error);
    }
    return {};
  }

  private async unpublish(user: string, stream: string = WEBCAM_STREAM): Promise<MediaResult<"unpublish">> {
    this.recording.endStream(user, stream, "the user unpublished");
    await this.graph.dropPublisher(streamIdOf(user, stream));
    return {};
  }

  private async setVideoQuality(params: Params<"setVideoQuality">): Promise<MediaResult<"setVideoQuality">> {
    const subscription = this.graph.subscription(params.user, streamIdOf(params.sender, params.stream));
    if (!subscription) throw endpointError(`${params.user} does not receive ${params.sender}'s media`);
    await subscription.endpoint.setVideoQuality(params.quality);
    return {};
  }

  /** `id`: the sender's stream id. */
  private async unsubscribe(user: string, id: string): Promise<MediaResult<"unsubscribe">> {
    await this.graph.dropSubscription(user, id);
    this.ice.drop(user, id);
    return {};
  }

  private async releaseUser(user: string): Promise<MediaResult<"releaseUser">> {
    this.recording.endUser(user, "the user's media was released");
    await Promise.all(this.graph.streamsOf(user).map((id) => this.graph.dropPublisher(id)));
    await this.graph.dropSubscriptionsOf(user);
    this.ice.dropUser(user);
    return {};
  }

  /** Everyone left or the room closed: the pipeline goes, with everything in it. */
  async releaseRoom(reason?: string): Promise<MediaResult<"releaseRoom">> {
    this.epoch += 1;
    const pipeline = this.pipeline;
    const slot = this.slot;
    // Started before the graph is forgotten; the pipeline goes only once the files are complete.
    const recordings = this.recording.endAll("the room's media was released");
    this.forgetGraph();
    if (pipeline && slot) {
      this.options.log.info("room media released", { room: this.room, ...(reason ? { reason } : {}) });
      this.options.pool.free(slot);
      this.options.onPipelineChange?.();
      await recordings;
      await pipeline.release();
    } else {
      await recordings;
    }
    return {};
  }

  /** After a (re)attach: drop the media of users the room no longer has. */
  private async sync(users: readonly string[]): Promise<MediaResult<"sync">> {
    const keep = new Set(users);
    const stale = new Set<string>();
    for (const user of this.heldUsers()) if (!keep.has(user)) stale.add(user);
    for (const user of this.ice.users()) if (!keep.has(user)) stale.add(user);
    await Promise.all([...stale].map((user) => this.command(user, () => this.releaseUser(user))));
    return { held: this.heldUsers() };
  }

  // ── media server events ───────────────────────────────────────────────────

  /** The room's KMS lost its media: forget the graph (nothing to release) and tell the room. */
  mediaLost(reason: string): void {
    if (!this.pipeline && !this.pipelineTask) return;
    const users = this.heldUsers();
    this.epoch += 1;
    // The recorders went with the media server: each file is taken as far as it got.
    void this.recording.endAll(`the media server lost the room's media: ${reason}`);
    this.forgetGraph();
    this.options.onPipelineChange?.();
    this.options.log.warn("room media lost", { room: this.room, users: users.length, reason });
    this.options.emit({ event: "mediaLost", error: reason });
  }

  // ── the pipeline ──────────────────────────────────────────────────────────

  private forgetGraph(): void {
    this.pipeline = null;
    this.pipelineTask = null;
    this.slot = null;
    this.graph.clear();
    this.ice.clear();
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
    this.ice.clear();
    if (slot) this.options.pool.free(slot);
    this.options.log.info("pipeline released (no media left)", { room: this.room });
    this.options.onPipelineChange?.();
    void pipeline.release();
  }

  private bandwidth(endpoint: WebRtcEndpoint, simulcastPublisher = false): Promise<void> {
    const base = this.options.bandwidth ?? ORIGINAL_BANDWIDTH;
    return applyBandwidth(endpoint, publisherBandwidth(base, simulcastPublisher), (message) =>
      this.options.log.warn("could not set the bandwidth limits", { room: this.room, error: message }),
    );
  }

  private iceServers(endpoint: WebRtcEndpoint): Promise<void> {
    const ice = this.options.ice;
    if (!ice) return Promise.resolve();
    return applyIceServers(endpoint, ice.config, ice.bridgeId, (message) =>
      this.options.log.warn("could not set STUN/TURN on the endpoint", { room: this.room, error: message }),
    );
  }

  private flushCandidates(user: string, name: string, endpoint: WebRtcEndpoint): Promise<void> {
    return this.ice.flush(user, name, endpoint, (error) => {
      const message = error instanceof Error ? error.message : String(error);
      this.options.log.debug("queued ICE candidate refused", { room: this.room, user, endpoint: name, error: message });
    });
  }
}
