/**
 * The churn soak driver (not a test file): simulated clients join, publish,
 * subscribe, chat, unpublish, unsubscribe, leave and drop their sockets at
 * random across a few rooms of a running system (scripts/system.ts), then
 * everyone leaves and the invariants are checked:
 *
 * - every connected client's roster (kept from notifications, in frame order)
 *   equals the room's true membership at a quiescent point, and a probe
 *   client's join result agrees;
 * - no unexpected error: errors the protocol defines for races (subscribing
 *   to someone who just left or unpublished, a candidate for an endpoint that
 *   just went away, a resume after the window) are counted, anything else is
 *   a failure;
 * - the media server holds 0 objects once everyone has left, and the room
 *   directory is empty;
 * - the worker's memory (RSS of workerd in the `wrangler dev` process group)
 *   is sampled at the start, after a warm-up, periodically, at the end of
 *   the churn and after everyone left; the caller judges its growth.
 *
 * Clients are RoomTestClient sockets with werift peers (real SDP offers and
 * answers, trickle ICE both ways, 127.0.0.1 only). Each client is an actor
 * that does one thing at a time with a random think time in between (the
 * pacing of the workload, not a wait for an event); publish and subscribe
 * negotiations run in the background so a client can drop or leave while one
 * is in flight. Decisions come from a seeded PRNG per client (test/soak/rng.ts).
 */
import { INVALID_SESSION_CODE, RoomCode } from "../../protocol/errors.ts";
import { RpcRequestError } from "../../protocol/rpc-peer.ts";
import type { System } from "../../scripts/system.ts";
import { testPeer, type Candidate, type TestPeer } from "../bridge/helpers/peers.ts";
import { RoomTestClient } from "../helpers/room-client.ts";
import { groupMemory, type GroupMemory, workerHeapAfterGc } from "./memory.ts";
import { Rng } from "./rng.ts";

export interface ChurnOptions {
  readonly system: System;
  readonly seed: number;
  /** How long clients churn before the final checks. */
  readonly durationMs: number;
  /** Simulated clients (at most 24: two cores run them, the media server, the bridge and workerd). */
  readonly clients: number;
  /** Rooms the clients spread over (default 3). */
  readonly rooms?: number;
  /** Publishers at a time over all rooms, pending ones included (default 8). */
  readonly maxPublishers?: number;
  /** Subscriptions per client, pending ones included (default 3). */
  readonly maxSubscriptions?: number;
  /** The worker's RECONNECT_WINDOW_SECONDS, in ms: resumes are attempted well inside it. */
  readonly reconnectWindowMs: number;
  /** When the "after warm-up" memory sample is taken (default a quarter of the duration, at most 30 s). */
  readonly warmupMs?: number;
  /** Period of the memory samples during the churn (default 10 s). */
  readonly sampleEveryMs?: number;
  readonly log?: (line: string) => void;
}

export const OPERATIONS = [
  "joins",
  "leaves",
  "drops",
  "resumes",
  "resumesExpired",
  "abandons",
  "publishes",
  "unpublishes",
  "subscribes",
  "unsubscribes",
  "chats",
  "chatsReceived",
  "candidatesSent",
  "candidatesReceived",
  "subscriptionsEndedByServer",
  "reconciles",
  "probes",
] as const;
export type Operation = (typeof OPERATIONS)[number];

export interface MemorySample {
  /** Milliseconds since the churn started (negative: before). */
  readonly atMs: number;
  readonly label: string;
  readonly memory: GroupMemory;
}

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p95: number;
  readonly max: number;
}

export function summarize(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { count: sorted.length, p50: at(0.5), p95: at(0.95), max: sorted.at(-1) ?? 0 };
}

export interface ChurnReport {
  readonly seed: number;
  readonly durationMs: number;
  readonly clients: number;
  readonly rooms: number;
  readonly counts: Record<Operation, number>;
  /** Errors the protocol defines for races, by `method code`. */
  readonly raceErrors: Record<string, number>;
  /** Errors nothing in the run explains, by `method code`. */
  readonly unexpectedErrors: Record<string, number>;
  /** Every invariant broken, one line each (the first few unexpected errors in full). */
  readonly failures: string[];
  readonly rosters: { readonly agreed: boolean; readonly clientsChecked: number; readonly probesChecked: number };
  /** Round trips (request → SDP answer) of the publishes and subscriptions that succeeded. */
  readonly latencyMs: Record<"publish" | "subscribe", LatencySummary>;
  /** Objects on the media server once everyone left (-1: no embedded media server to ask). */
  readonly mediaObjectsLeft: number;
  readonly roomsLeft: string[];
  readonly memory: {
    readonly start: GroupMemory;
    readonly afterWarmup: GroupMemory;
    readonly endOfChurn: GroupMemory;
    readonly afterLeave: GroupMemory;
    readonly samples: MemorySample[];
    /** The worker isolate's live JavaScript heap after a forced GC, in bytes (null: the inspector was unreachable). */
    readonly heapAfterGc: {
      readonly start: number | null;
      readonly afterWarmup: number | null;
      readonly endOfChurn: number | null;
      readonly afterLeave: number | null;
    };
  };
  readonly ok: boolean;
}

const REQUEST_TIMEOUT_MS = 20_000;
/** As the client library's mediaRequestTimeoutMs: longer than the room's MEDIA_TIMEOUT_MS (25 s by default). */
const MEDIA_REQUEST_TIMEOUT_MS = 40_000;
const MAX_CLIENTS = 24;

type CallOutcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: RpcRequestError };

type PublishState = "none" | "pending" | "live" | "unknown";

/** One media negotiation: a werift peer and what the client knows of it. */
class Leg {
  readonly kind: "publish" | "subscribe";
  readonly endpoint: string;
  readonly peer: TestPeer;
  /** The server answered the request successfully (set in frame order, before the promise settles). */
  replied = false;
  /** The SDP answer is applied: server candidates can go in. */
  answered = false;
  closed = false;
  readonly queue: Candidate[] = [];

  constructor(kind: "publish" | "subscribe", endpoint: string, peer: TestPeer) {
    this.kind = kind;
    this.endpoint = endpoint;
    this.peer = peer;
  }
}

/** What the whole run shares: counters, failures, live-count of publishers, promises to settle. */
class Run {
  readonly options: ChurnOptions;
  readonly counts = Object.fromEntries(OPERATIONS.map((op) => [op, 0])) as Record<Operation, number>;
  readonly raceErrors: Record<string, number> = {};
  readonly unexpectedErrors: Record<string, number> = {};
  readonly failures: string[] = [];
  /** Background work (negotiations, candidates, peer closes) the final phase waits for. */
  readonly background = new Set<Promise<unknown>>();
  stopping = false;
  /** Round trips of the publishes and subscriptions that succeeded (request → SDP answer), in ms. */
  readonly latencies: Record<"publish" | "subscribe", number[]> = { publish: [], subscribe: [] };
  /** When a client last gave a seat up without leaving (its seat expires a window later). */
  lastSeatGivenUpAt = 0;

  constructor(options: ChurnOptions) {
    this.options = options;
  }

  count(op: Operation, n = 1): void {
    this.counts[op] += n;
  }

  fail(line: string): void {
    // Keep the report readable: the first 40 in full, then only the count.
    if (this.failures.length < 40) this.failures.push(line);
    else if (this.failures.length === 40) this.failures.push("… more failures left out");
  }

  unexpected(key: string, detail: string): void {
    this.unexpectedErrors[key] = (this.unexpectedErrors[key] ?? 0) + 1;
    this.fail(`unexpected ${key}: ${detail}`);
  }

  race(key: string): void {
    this.raceErrors[key] = (this.raceErrors[key] ?? 0) + 1;
  }

  track<T>(promise: Promise<T>): Promise<T> {
    const settled = promise.then(
      () => undefined,
      () => undefined,
    );
    this.background.add(settled);
    void settled.then(() => this.background.delete(settled));
    return promise;
  }

  /** Waits until no background work is left (new work started meanwhile included), bounded. */
  async settle(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.background.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all([...this.background]),
        new Promise((resolve) => {
          timer = setTimeout(resolve, left);
        }),
      ]);
      clearTimeout(timer);
    }
    return true;
  }

  publishers(clients: readonly SoakClient[]): number {
    return clients.filter((c) => c.publishState !== "none").length;
  }
}

/** Why this side ended a socket; a close the client did not ask for is a failure. */
type EndReason = "left" | "dropped" | "final";

class SoakClient {
  readonly slot: number;
  readonly run: Run;
  readonly rng: Rng;
  readonly all: () => readonly SoakClient[];
  room: string | null = null;
  user = "";
  sessionId = "";
  generation = 0;
  state: "out" | "in" | "away" = "out";
  conn: RoomTestClient | null = null;
  readonly ended = new WeakMap<RoomTestClient, EndReason>();
  /** Request id → the leg whose request it is, for the current socket. */
  awaiting = new Map<number, Leg>();
  /** Everyone else in the room, as this client learnt from its join/connect result and notifications: user → publishing. */
  readonly roster = new Map<string, boolean>();
  publishState: PublishState = "none";
  publishLeg: Leg | null = null;
  readonly subs = new Map<string, Leg>();
  /** Subscriptions whose answer a drop may have swallowed: released after a resume. */
  readonly unknownSubs = new Set<string>();
  /** Users seen leaving: a later subscription to one of them exercises the 102/105 race on purpose. */
  readonly departed: string[] = [];
  chats = 0;

  constructor(slot: number, run: Run, all: () => readonly SoakClient[]) {
    this.slot = slot;
    this.run = run;
    this.rng = Rng.derive(run.options.seed, slot);
    this.all = all;
  }

  get url(): string {
    return `${this.run.options.system.url.replace(/^http/, "ws")}/room/${encodeURIComponent(this.room ?? "")}`;
  }

  // ── the actor ──────────────────────────────────────────────────────────────

  async loop(): Promise<void> {
    while (!this.run.stopping) {
      // Think time: the pace of the workload, not a wait for anything.
      await pause(this.rng.int(80, 600));
      if (this.run.stopping) break;
      try {
        await this.step();
      } catch (error) {
        this.run.unexpected("client crash", `${this.user || `slot ${this.slot}`}: ${describe(error)}`);
        this.reset();
      }
    }
  }

  async step(): Promise<void> {
    if (this.state === "out") return this.join();
    if (this.state !== "in" || !this.conn) return;
    const run = this.run;
    const options = run.options;
    const publishing = this.publishState !== "none";
    const publishable = [...this.roster].filter(([user, live]) => live && !this.subs.has(user)).map(([u]) => u);
    const action = this.rng.weighted({
      chat: 24,
      publish:
        !publishing && run.publishers(this.all()) < (options.maxPublishers ?? 8) && this.publishLeg === null ? 14 : 0,
      unpublish: this.publishState === "live" ? 4 : 0,
      subscribe: publishable.length > 0 && this.subs.size < (options.maxSubscriptions ?? 3) ? 22 : 0,
      staleSubscribe: this.departed.length > 0 ? 1 : 0,
      unsubscribe: this.subs.size > 0 ? 6 : 0,
      leave: 4,
      drop: 4,
      ping: 2,
    });
    switch (action) {
      case "chat":
        return this.chat();
      case "publish":
        this.background(this.negotiate("publish", this.user));
        return;
      case "unpublish":
        return this.unpublish(false);
      case "subscribe": {
        const sender = this.rng.pick(publishable);
        if (sender !== undefined) this.background(this.negotiate("subscribe", sender));
        return;
      }
      case "staleSubscribe": {
        const gone = this.rng.pick(this.departed);
        if (gone !== undefined && !this.roster.has(gone) && !this.subs.has(gone))
          this.background(this.negotiate("subscribe", gone));
        return;
      }
      case "unsubscribe": {
        const sender = this.rng.pick([...this.subs.keys()]);
        if (sender !== undefined) await this.unsubscribe(sender, false);
        return;
      }
      case "leave":
        return this.leave("left");
      case "drop":
        return this.dropAndMaybeResume();
      case "ping": {
        await this.call(this.conn, "ping", {});
        return;
      }
      case undefined:
        return;
    }
  }

  background(work: Promise<void>): void {
    this.run.track(
      work.catch((error: unknown) => {
        this.run.unexpected("client crash", `${this.user}: ${describe(error)}`);
      }),
    );
  }

  // ── sockets and frames ─────────────────────────────────────────────────────

  async open(): Promise<RoomTestClient> {
    const conn = await RoomTestClient.connect(this.url, REQUEST_TIMEOUT_MS);
    this.conn = conn;
    this.awaiting = new Map();
    conn.ws.on("message", (data) => this.onFrame(conn, data.toString()));
    void conn.closed().then(({ code, reason }) => {
      if (this.ended.has(conn) || this.conn !== conn) return;
      // Nobody on this side ended it: the server (or the network) did.
      this.run.unexpected("socket closed by the server", `${this.user}: ${code} ${reason}`);
      this.conn = null;
      this.abandon();
    });
    return conn;
  }

  /** Every frame, in the order it arrived (the RpcPeer has already seen it). */
  onFrame(conn: RoomTestClient, text: string): void {
    // RoomTestClient keeps every frame and notification for tests that await them; nothing here
    // does, so they are dropped to keep this process's memory flat over a long run.
    conn.frames.length = 0;
    conn.notifications.length = 0;
    if (conn !== this.conn) return;
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(text) as Record<string, unknown>;
    } catch {
      this.run.unexpected("bad frame", `${this.user}: ${text.slice(0, 200)}`);
      return;
    }
    if (typeof frame.method === "string") {
      this.onNotification(frame.method, (frame.params ?? {}) as Record<string, unknown>);
      return;
    }
    const result = frame.result as Record<string, unknown> | undefined;
    if (typeof frame.id === "number") {
      const leg = this.awaiting.get(frame.id);
      if (leg) {
        this.awaiting.delete(frame.id);
        if (result && !leg.closed) {
          leg.replied = true;
          if (leg.kind === "publish") this.publishState = "live";
        }
      }
    }
    // joinRoom and connect are the only answers whose `value` is a list: the roster as of now.
    if (result && Array.isArray(result.value)) {
      this.roster.clear();
      for (const peer of result.value as Array<{ id: string; streams?: unknown[] }>) {
        this.roster.set(peer.id, Array.isArray(peer.streams) && peer.streams.length > 0);
      }
    }
  }

  onNotification(method: string, params: Record<string, unknown>): void {
    switch (method) {
      case "participantJoined":
        this.roster.set(String(params.id), false);
        return;
      case "participantPublished":
        this.roster.set(String(params.id), true);
        return;
      case "participantUnpublished": {
        const name = String(params.name);
        if (this.roster.has(name)) this.roster.set(name, false);
        else this.run.fail(`${this.user} in ${this.room}: participantUnpublished for '${name}', not in its roster`);
        this.streamGone(name);
        return;
      }
      case "participantLeft": {
        const name = String(params.name);
        if (!this.roster.delete(name))
          this.run.fail(`${this.user} in ${this.room}: participantLeft for '${name}', not in its roster`);
        this.departed.push(name);
        if (this.departed.length > 8) this.departed.shift();
        this.streamGone(name);
        return;
      }
      case "iceCandidate":
        return this.serverCandidate(params);
      case "sendMessage":
        this.run.count("chatsReceived");
        return;
      default:
        // participantEvicted, roomClosed, mediaError: nothing in this run should cause them.
        this.run.unexpected(`notification ${method}`, `${this.user} in ${this.room}: ${JSON.stringify(params)}`);
    }
  }

  /** `name` unpublished or left: a subscription the server already answered is over (the server released it). */
  streamGone(name: string): void {
    const leg = this.subs.get(name);
    // A request not answered yet is decided by its answer: the server handled this event first.
    if (!leg?.replied) return;
    this.subs.delete(name);
    this.closeLeg(leg);
    this.run.count("subscriptionsEndedByServer");
  }

  serverCandidate(params: Record<string, unknown>): void {
    const endpoint = String(params.endpointName);
    const leg = endpoint === this.user ? this.publishLeg : this.subs.get(endpoint);
    if (!leg || leg.closed) return; // for a leg already given up
    this.run.count("candidatesReceived");
    const candidate: Candidate = {
      candidate: String(params.candidate),
      sdpMid: typeof params.sdpMid === "string" ? params.sdpMid : null,
      sdpMLineIndex: Number(params.sdpMLineIndex),
    };
    if (leg.answered) void leg.peer.addRemote(candidate).catch(() => undefined);
    else leg.queue.push(candidate);
  }

  /**
   * A request on `conn`; errors are classified (race or unexpected) and returned, never thrown.
   * `reconcile`: a request sent only to learn the state after a resume, where "not streaming" and
   * "not receiving" are possible answers.
   */
  async call<T>(
    conn: RoomTestClient,
    method: string,
    params: Record<string, unknown>,
    options: { timeoutMs?: number; reconcile?: boolean } = {},
  ): Promise<CallOutcome<T>> {
    try {
      const value = await conn.peer.request<T>(method, params, options.timeoutMs ?? REQUEST_TIMEOUT_MS);
      return { ok: true, value };
    } catch (error) {
      if (!(error instanceof RpcRequestError)) throw error;
      const key = `${method} ${error.code}`;
      if (this.isRace(conn, method, error, options.reconcile ?? false)) this.run.race(key);
      else this.run.unexpected(key, `${this.user} in ${this.room}: ${error.message}`);
      return { ok: false, error };
    }
  }

  isRace(conn: RoomTestClient, method: string, error: RpcRequestError, reconcile: boolean): boolean {
    // This side ended the socket (a drop or a leave): what was in flight dies with it.
    if (error.code === RoomCode.TRANSPORT && this.ended.has(conn)) return true;
    switch (method) {
      case "receiveVideoFrom":
        // The sender left (102), unpublished (105), or its stream went away while negotiating (301).
        return (
          error.code === RoomCode.USER_NOT_FOUND ||
          error.code === RoomCode.USER_NOT_STREAMING ||
          (error.code === RoomCode.MEDIA_GENERIC && /interrupted/.test(error.message))
        );
      case "unsubscribeFromVideo":
        // The sender unpublished or left just before: the server already dropped the subscription.
        return error.code === RoomCode.USER_GENERIC;
      case "onIceCandidate":
        // The endpoint went away (its sender unpublished or left, or its negotiation failed) meanwhile.
        return error.code === RoomCode.MEDIA_ENDPOINT;
      case "unpublishVideo":
        return reconcile && error.code === RoomCode.USER_NOT_STREAMING;
      case "connect":
        // The seat expired before the resume (a loaded machine may be that slow).
        return error.code === INVALID_SESSION_CODE;
      default:
        return false;
    }
  }

  // ── operations ─────────────────────────────────────────────────────────────

  async join(): Promise<void> {
    const rooms = this.run.options.rooms ?? 3;
    this.room = `churn-${this.rng.int(1, rooms)}`;
    this.generation += 1;
    this.user = `u${this.slot}g${this.generation}`;
    this.roster.clear();
    this.departed.length = 0;
    const conn = await this.open();
    const joined = await this.call<{ sessionId: string }>(conn, "joinRoom", { user: this.user, room: this.room });
    if (!joined.ok) {
      this.endSocket(conn, "left");
      this.reset();
      return;
    }
    this.sessionId = joined.value.sessionId;
    this.state = "in";
    this.run.count("joins");
  }

  async chat(): Promise<void> {
    if (!this.conn || !this.room) return;
    this.chats += 1;
    const sent = await this.call(this.conn, "sendMessage", {
      message: `${this.user} #${this.chats}`,
      userMessage: this.user,
      roomMessage: this.room,
    });
    if (sent.ok) this.run.count("chats");
  }

  /** Publishes (own endpoint) or subscribes to `endpoint`, with real SDP and trickle ICE. */
  async negotiate(kind: "publish" | "subscribe", endpoint: string): Promise<void> {
    const conn = this.conn;
    if (!conn) return;
    let held: Candidate[] | null = [];
    const send = (candidate: Candidate): void => {
      if (leg.closed || this.conn !== conn || this.ended.has(conn)) return;
      this.run.count("candidatesSent");
      this.run.track(this.call(conn, "onIceCandidate", { endpointName: endpoint, ...candidate }));
    };
    // Candidates gathered before the offer went out wait for it, as a browser client's do.
    const peer = testPeer(kind === "publish" ? "sendonly" : "recvonly", (candidate) => {
      if (held) held.push(candidate);
      else send(candidate);
    });
    const leg: Leg = new Leg(kind, endpoint, peer);
    if (kind === "publish") {
      this.publishLeg = leg;
      this.publishState = "pending";
    } else this.subs.set(endpoint, leg);

    let offer: string;
    try {
      offer = await peer.offer();
    } catch (error) {
      if (leg.closed) return; // closed meanwhile (a drop, a leave)
      throw error;
    }
    if (leg.closed || this.conn !== conn) return this.forget(leg); // dropped or left meanwhile
    const id = conn.peer.nextId;
    this.awaiting.set(id, leg);
    const request =
      kind === "publish"
        ? this.call<{ sdpAnswer: string }>(
            conn,
            "publishVideo",
            { sdpOffer: offer, doLoopback: false },
            { timeoutMs: MEDIA_REQUEST_TIMEOUT_MS },
          )
        : this.call<{ sdpAnswer: string }>(
            conn,
            "receiveVideoFrom",
            { sender: `${endpoint}_webcam`, sdpOffer: offer },
            { timeoutMs: MEDIA_REQUEST_TIMEOUT_MS },
          );
    const sentAt = Date.now();
    const waiting = held;
    held = null;
    for (const candidate of waiting) send(candidate);
    const outcome = await request;
    if (outcome.ok) this.run.latencies[kind].push(Date.now() - sentAt);
    this.awaiting.delete(id);
    if (!outcome.ok || leg.closed) {
      // Refused, cut by a drop or leave, or ended by the server right after its answer.
      if (kind === "publish" && this.publishLeg === leg && this.publishState === "pending") this.publishState = "none";
      return this.forget(leg);
    }
    try {
      await peer.answer(outcome.value.sdpAnswer);
    } catch (error) {
      if (leg.closed) return; // unpublished, unsubscribed or ended by the server while applying it
      throw error;
    }
    if (leg.closed) return;
    leg.answered = true;
    for (const candidate of leg.queue.splice(0)) void peer.addRemote(candidate).catch(() => undefined);
    this.run.count(kind === "publish" ? "publishes" : "subscribes");
  }

  /** The leg is over on this side: closed, and no longer this client's publish or subscription. */
  forget(leg: Leg): void {
    if (leg.kind === "publish") {
      if (this.publishLeg === leg) this.publishLeg = null;
    } else if (this.subs.get(leg.endpoint) === leg) this.subs.delete(leg.endpoint);
    this.closeLeg(leg);
  }

  closeLeg(leg: Leg): void {
    if (leg.closed) return;
    leg.closed = true;
    // A werift peer that fails to close is a client-side matter, not the system's.
    this.run.track(leg.peer.close().catch(() => undefined));
  }

  async unpublish(reconcile: boolean): Promise<void> {
    const conn = this.conn;
    if (!conn) return;
    const leg = this.publishLeg;
    const done = await this.call(conn, "unpublishVideo", {}, { reconcile });
    if (conn !== this.conn) return;
    if (done.ok) this.run.count(reconcile ? "reconciles" : "unpublishes");
    if (done.ok || reconcile) {
      this.publishState = "none";
      if (leg && this.publishLeg === leg) this.forget(leg);
    }
  }

  async unsubscribe(sender: string, reconcile: boolean): Promise<void> {
    const conn = this.conn;
    if (!conn) return;
    const leg = this.subs.get(sender);
    // Given up on this side first: a pending try's answer (301, unsubscribed meanwhile) finds it closed.
    if (leg) this.forget(leg);
    const done = await this.call(conn, "unsubscribeFromVideo", { sender: `${sender}_webcam` }, { reconcile });
    if (done.ok) this.run.count(reconcile ? "reconciles" : "unsubscribes");
  }

  async leave(reason: "left" | "final"): Promise<void> {
    const conn = this.conn;
    if (!conn) return;
    this.ended.set(conn, reason);
    const left = await this.call(conn, "leaveRoom", {});
    if (left.ok) {
      const close = await conn.closedWithin(REQUEST_TIMEOUT_MS).catch(() => null);
      if (!close) this.run.unexpected("leaveRoom close", `${this.user}: the server did not close the socket`);
      else if (close.code !== 1000)
        this.run.unexpected("leaveRoom close", `${this.user}: ${close.code} ${close.reason}`);
      this.run.count("leaves");
    }
    conn.terminate();
    if (this.conn === conn) this.reset();
  }

  /** Drops the socket without a close handshake; then resumes within the window, or gives the seat up. */
  async dropAndMaybeResume(): Promise<void> {
    const conn = this.conn;
    if (!conn) return;
    this.endSocket(conn, "dropped");
    this.conn = null;
    this.state = "away";
    this.run.count("drops");
    // What was being negotiated may or may not have been answered before the drop.
    if (this.publishState === "pending") this.publishState = "unknown";
    if (this.publishLeg && !this.publishLeg.replied) this.forget(this.publishLeg);
    for (const [sender, leg] of [...this.subs]) {
      if (leg.replied) continue;
      this.unknownSubs.add(sender);
      this.forget(leg);
    }
    const window = this.run.options.reconnectWindowMs;
    if (!this.rng.chance(0.65)) {
      this.abandon();
      return;
    }
    // Well inside the window, so a loaded machine still makes it.
    await pause(this.rng.int(50, Math.min(1500, Math.floor(window / 3))));
    const back = await this.open();
    const resumed = await this.call(back, "connect", { sessionId: this.sessionId });
    if (!resumed.ok) {
      if (resumed.error.code === INVALID_SESSION_CODE) this.run.count("resumesExpired");
      this.endSocket(back, "left");
      this.abandon();
      return;
    }
    this.state = "in";
    this.run.count("resumes");
    // Notifications sent while away are lost; the connect answer replaced the roster. A stream
    // this client received whose sender no longer publishes was released by the server.
    for (const [sender, leg] of [...this.subs]) {
      if (this.roster.get(sender) === true) continue;
      this.forget(leg);
      this.run.count("subscriptionsEndedByServer");
    }
    // An answer the drop swallowed may have left a publish or subscription live on the server:
    // release it (or learn it was not there).
    if (this.publishState === "unknown") await this.unpublish(true);
    for (const sender of [...this.unknownSubs]) {
      this.unknownSubs.delete(sender);
      if (!this.subs.has(sender)) await this.unsubscribe(sender, true);
    }
  }

  endSocket(conn: RoomTestClient, reason: EndReason): void {
    if (!this.ended.has(conn)) this.ended.set(conn, reason);
    conn.terminate();
  }

  /** Gives the seat up on this side (it expires on the server after the window). */
  abandon(): void {
    if (this.conn) this.endSocket(this.conn, "dropped");
    this.run.count("abandons");
    this.run.lastSeatGivenUpAt = Date.now();
    this.reset();
  }

  /** Back to "out": every peer closed, nothing known. */
  reset(): void {
    if (this.conn && !this.ended.has(this.conn)) this.endSocket(this.conn, "left");
    this.conn = null;
    if (this.publishLeg) this.forget(this.publishLeg);
    for (const leg of [...this.subs.values()]) this.forget(leg);
    this.unknownSubs.clear();
    this.publishState = "none";
    this.roster.clear();
    this.state = "out";
    this.room = null;
  }
}

// ── the run ──────────────────────────────────────────────────────────────────

export async function runChurn(options: ChurnOptions): Promise<ChurnReport> {
  if (options.clients < 1 || options.clients > MAX_CLIENTS)
    throw new Error(`clients must be 1…${MAX_CLIENTS} (two cores run them all)`);
  const log = options.log ?? (() => undefined);
  const run = new Run(options);
  const { system } = options;
  const rooms = options.rooms ?? 3;
  const samples: MemorySample[] = [];
  const startedAt = Date.now();
  let workerdPids = "";
  const sample = (label: string): GroupMemory => {
    const memory = groupMemory(system.worker.pid);
    samples.push({ atMs: Date.now() - startedAt, label, memory });
    // workerd restarting (a crash, or wrangler reloading the worker) drops every socket and resets
    // every Durable Object: the soak must notice, not just the sockets that happen to see it.
    const pids = memory.workerd.map((w) => w.pid).join(",");
    if (workerdPids !== "" && pids !== workerdPids)
      run.fail(`workerd restarted (${label}): pids ${workerdPids} → ${pids}`);
    workerdPids = pids;
    return memory;
  };
  const crash = (error: unknown): void => run.unexpected("process crash", describe(error));
  process.on("unhandledRejection", crash);
  process.on("uncaughtException", crash);
  const clients: SoakClient[] = [];
  try {
    const start = sample("start");
    const heapAtStart = await workerHeapAfterGc(system.worker.pid);
    if (start.workerd.length === 0) run.fail(`no workerd process in the process group ${system.worker.pid}`);
    for (let slot = 0; slot < options.clients; slot++) clients.push(new SoakClient(slot, run, () => clients));
    log(`churn: ${options.clients} clients over ${rooms} rooms for ${Math.round(options.durationMs / 1000)} s`);

    const loops = clients.map((client) => client.loop());
    const warmupMs = options.warmupMs ?? Math.min(30_000, Math.floor(options.durationMs / 4));
    const everyMs = options.sampleEveryMs ?? 10_000;
    let afterWarmup = start;
    let heapAfterWarmup: number | null = null;
    let warmed = false;
    while (Date.now() - startedAt < options.durationMs) {
      const elapsed = Date.now() - startedAt;
      const nextAt = !warmed ? warmupMs : Math.min(options.durationMs, (Math.floor(elapsed / everyMs) + 1) * everyMs);
      await pause(Math.max(0, Math.min(nextAt, options.durationMs) - elapsed));
      if (!warmed && Date.now() - startedAt >= warmupMs) {
        afterWarmup = sample("after warm-up");
        heapAfterWarmup = await workerHeapAfterGc(system.worker.pid);
        warmed = true;
      } else if (Date.now() - startedAt < options.durationMs) sample("churn");
      log(progress(run, clients, startedAt));
    }

    // Quiescence: no new operations, every one in flight answered.
    run.stopping = true;
    await Promise.all(loops);
    if (!(await run.settle(MEDIA_REQUEST_TIMEOUT_MS + 20_000)))
      run.fail("requests still unanswered 60 s after the churn");
    const rosters = await checkRosters(run, clients, rooms);
    const endOfChurn = sample("end of churn");
    const heapAtEnd = await workerHeapAfterGc(system.worker.pid);

    // Everyone leaves; then nothing may be left on the media server nor in the directory.
    for (const client of clients) if (client.state === "in") run.track(client.leave("final"));
    for (const client of clients) if (client.state === "away") client.abandon();
    await run.settle(60_000);
    const mediaObjectsLeft = await waitForNoMediaObjects(system, 60_000 + options.reconnectWindowMs);
    if (mediaObjectsLeft !== 0)
      run.fail(`the media server still holds ${mediaObjectsLeft} objects after everyone left`);
    const roomsLeft = await waitForNoRooms(system.url, 30_000);
    if (roomsLeft.length > 0) run.fail(`rooms still open after everyone left: ${roomsLeft.join(", ")}`);
    const health = await fetch(`${system.url}/health`).then((r) => r.json() as Promise<{ bridges?: number }>);
    if (health.bridges !== 1) run.fail(`the worker counts ${String(health.bridges)} bridges at the end, not 1`);
    const afterLeave = sample("after leave");
    const heapAfterLeave = await workerHeapAfterGc(system.worker.pid);

    return {
      seed: options.seed,
      durationMs: options.durationMs,
      clients: options.clients,
      rooms,
      counts: run.counts,
      raceErrors: run.raceErrors,
      unexpectedErrors: run.unexpectedErrors,
      failures: run.failures,
      rosters,
      latencyMs: { publish: summarize(run.latencies.publish), subscribe: summarize(run.latencies.subscribe) },
      mediaObjectsLeft,
      roomsLeft,
      memory: {
        start,
        afterWarmup,
        endOfChurn,
        afterLeave,
        samples,
        heapAfterGc: {
          start: heapAtStart,
          afterWarmup: heapAfterWarmup,
          endOfChurn: heapAtEnd,
          afterLeave: heapAfterLeave,
        },
      },
      ok: run.failures.length === 0,
    };
  } finally {
    run.stopping = true;
    for (const client of clients) if (client.conn) client.endSocket(client.conn, "final");
    process.off("unhandledRejection", crash);
    process.off("uncaughtException", crash);
  }
}

/**
 * The rosters at a quiescent point: every connected client's view of its room must equal the
 * room's true membership (the connected clients, and who of them publishes). Seats given up by a
 * drop expire after the window, and notifications are in flight, so this waits (bounded, woken by
 * each frame) until they agree; then a probe joins each room and its join result must agree too.
 */
async function checkRosters(
  run: Run,
  clients: readonly SoakClient[],
  rooms: number,
): Promise<{ agreed: boolean; clientsChecked: number; probesChecked: number }> {
  const expected = (): Map<string, Map<string, boolean>> => {
    const byRoom = new Map<string, Map<string, boolean>>();
    for (let i = 1; i <= rooms; i++) byRoom.set(`churn-${i}`, new Map());
    for (const c of clients) {
      if (c.state === "in" && c.room) byRoom.get(c.room)?.set(c.user, c.publishState === "live");
    }
    return byRoom;
  };
  const disagreements = (): string[] => {
    const truth = expected();
    const problems: string[] = [];
    for (const c of clients) {
      if (c.state !== "in" || !c.room) continue;
      const want = new Map(truth.get(c.room));
      want.delete(c.user);
      if (!sameRoster(c.roster, want))
        problems.push(`${c.user} in ${c.room} sees ${showRoster(c.roster)}; the room holds ${showRoster(want)}`);
    }
    return problems;
  };
  const boundMs = run.options.reconnectWindowMs + 30_000;
  const deadline = Date.now() + boundMs;
  let problems = disagreements();
  while (problems.length > 0 && Date.now() < deadline) {
    await pause(100);
    problems = disagreements();
  }
  for (const problem of problems) run.fail(`roster after ${Math.round(boundMs / 1000)} s: ${problem}`);
  const clientsChecked = clients.filter((c) => c.state === "in").length;

  // The server's own view: a newcomer's join result. A room nobody is connected to has no client
  // roster to wait on, so first let the last seat given up by a drop expire (the room's alarm
  // fires at the window's end); a disagreement then is probed again until the bound, since the
  // alarm may run late on a loaded machine.
  const expiry = run.lastSeatGivenUpAt + run.options.reconnectWindowMs;
  if (expiry > Date.now()) await pause(expiry - Date.now());
  let probesChecked = 0;
  let probeProblems: string[] = [];
  for (let attempt = 1; ; attempt++) {
    probeProblems = [];
    for (const [room, members] of expected()) {
      const seen = await probeRoster(run, room, attempt);
      probesChecked += 1;
      if (!sameRoster(seen, members))
        probeProblems.push(`probe of ${room} sees ${showRoster(seen)}; the clients hold ${showRoster(members)}`);
    }
    if (probeProblems.length === 0 || Date.now() > deadline) break;
    await pause(500);
  }
  for (const problem of probeProblems) run.fail(problem);
  return { agreed: problems.length === 0 && probeProblems.length === 0, clientsChecked, probesChecked };
}

/** Joins `room` as a probe, returns the roster its join result lists, and leaves. */
async function probeRoster(run: Run, room: string, attempt: number): Promise<Map<string, boolean>> {
  const url = `${run.options.system.url.replace(/^http/, "ws")}/room/${room}`;
  const probe = await RoomTestClient.connect(url, REQUEST_TIMEOUT_MS);
  try {
    const joined = await probe.request<{ value: Array<{ id: string; streams?: unknown[] }> }>("joinRoom", {
      user: `probe-${attempt}`,
      room,
    });
    await probe.request("leaveRoom");
    await probe.closedWithin(REQUEST_TIMEOUT_MS);
    run.count("probes");
    return new Map(joined.value.map((p) => [p.id, Array.isArray(p.streams) && p.streams.length > 0]));
  } finally {
    probe.terminate();
  }
}

function sameRoster(a: ReadonlyMap<string, boolean>, b: ReadonlyMap<string, boolean>): boolean {
  if (a.size !== b.size) return false;
  for (const [user, live] of a) if (b.get(user) !== live) return false;
  return true;
}

function showRoster(roster: ReadonlyMap<string, boolean>): string {
  const entries = [...roster].sort(([a], [b]) => a.localeCompare(b)).map(([u, live]) => (live ? `${u}*` : u));
  return `[${entries.join(" ")}]`;
}

/** Polls the embedded media server's object count (an in-process read) until it is 0, bounded; returns the last count. */
async function waitForNoMediaObjects(system: System, timeoutMs: number): Promise<number> {
  const server = system.mediaServer;
  if (!server) return -1;
  const deadline = Date.now() + timeoutMs;
  while (server.stats().objects > 0 && Date.now() < deadline) await pause(100);
  return server.stats().objects;
}

/** Polls /getAllRooms (updated in the background after each leave) until it lists nothing, bounded. */
async function waitForNoRooms(url: string, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rooms = (await fetch(`${url}/getAllRooms`).then((r) => r.json())) as string[];
    if (rooms.length === 0 || Date.now() > deadline) return rooms;
    await pause(200);
  }
}

function progress(run: Run, clients: readonly SoakClient[], startedAt: number): string {
  const inRooms = clients.filter((c) => c.state === "in").length;
  const c = run.counts;
  const memory = groupMemory(run.options.system.worker.pid);
  return (
    `t=${Math.round((Date.now() - startedAt) / 1000)}s in=${inRooms} publishing=${run.publishers(clients)} ` +
    `joins=${c.joins} leaves=${c.leaves} drops=${c.drops} resumes=${c.resumes} publishes=${c.publishes} ` +
    `subscribes=${c.subscribes} chats=${c.chats} media-objects=${run.options.system.mediaServer?.stats().objects ?? -1} ` +
    `workerd=${memory.workerd.map((w) => `${w.pid}:${Math.round(w.bytes / 1048576)}MB`).join(",")} failures=${run.failures.length}`
  );
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
