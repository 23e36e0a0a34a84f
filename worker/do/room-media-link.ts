/**
 * The room's end of its media bridge link: turns the core's media commands
 * into requests on the bridge socket and the bridge's answers and events back
 * into core inputs. Implements the `MediaPort` seam of the room core.
 *
 * When a command needs media and no bridge is attached, the link asks the
 * BridgePool for one and holds commands (in order) until the bridge's socket
 * arrives and the roster has been reconciled with `sync` (or until the room's
 * alarm expires the media requests waiting for it).
 *
 * The link's whole state is one field, changed only by `#transition`:
 *
 *   idle ──▶ summoning ──▶ syncing ──▶ attached
 *    ▲  ▲        │            │  ▲        │
 *    │  └────────┘            │  └────────┤ (a newer socket replaces the old one)
 *    │                        ▼           ▼
 *    └──────────────── waitingForReturn ◀─┘ (the socket dropped unexpectedly)
 *
 * Every state that holds commands owns the one promise they wait on; a state
 * that is left settles it, so no later state can inherit a spent promise.
 *
 * A command that answers a client request goes out with its pending ref (a
 * persisted row of the room) as its JSON-RPC id, and is not tracked by the
 * peer: its answer is matched by that id, so it reaches the room core even
 * when this object was evicted or hibernated after sending it (a rebuilt
 * object has a new peer that never sent it). The room stops waiting at the
 * ref's stored deadline, by the alarm, not by a timer of this instance. Other
 * commands go out under ids with a random prefix per peer, so an answer meant
 * for an earlier instance can never settle one of this instance's requests.
 */
import type { Input } from "../core/types.ts";
import {
  mediaCommandResults,
  mediaEventParams,
  type MediaCommand,
  type MediaEvent,
  type MediaEventMethod,
  type MediaOp,
} from "../../protocol/bridge.ts";
import { RoomCode, rpcError, type RpcError } from "../../protocol/errors.ts";
import type { RequestId } from "../../protocol/jsonrpc.ts";
import { RpcPeer, RpcRequestError, type RpcOutcome } from "../../protocol/rpc-peer.ts";
import { CloseCode } from "../../protocol/close-codes.ts";
import { closeQuietly } from "../ws-util.ts";
import type { Assignment } from "./bridge-pool.ts";

/** How long a dropped bridge link may take to come back before the room's media counts as lost. */
const BRIDGE_RETURN_GRACE_MS = 3000;

export interface MediaLinkHost {
  /** Feeds an input to the room core. */
  deliver(input: Input): void;
  /** Everyone seated, and who of them has established media (for `sync`). */
  roster(): { users: string[]; withMedia: string[] };
  /** Asks the BridgePool for a bridge; resolves once the bridge is told to attach. */
  assign(user: string): Promise<Assignment>;
  /** The room released its media: the pool may forget the assignment. */
  released(): void;
  /** Whether the room core still waits for the media request `ref`. */
  isPending(ref: string): boolean;
  /** The media requests the room core waits for (after an eviction: sent by an earlier instance, or never sent). */
  pendingRefs(): Array<{ ref: string; op: string }>;
  /** The room stops waiting for `ref`: `error` to its asker, the command undone on the bridge. */
  giveUp(ref: string, error: RpcError): void;
  /**
   * The bridge refused a command nobody waits for (`record`, say), or no bridge could be found for
   * it: its own error, never a lost link or a timeout (what was lost is reported as media lost).
   */
  refused(command: MediaCommand, error: RpcError): void;
  log(fields: Record<string, unknown>): void;
}

type Timer = ReturnType<typeof setTimeout>;

/**
 * What this instance knows of a media request (a command with a ref): still waiting for a bridge
 * (`queued`), sent on `peer` (`sent`), or found pending when the object started with a bridge socket
 * already open (`adopted`: an earlier instance sent it, or it never went out).
 */
type RequestStage =
  | { readonly stage: "queued"; readonly op: MediaOp }
  | { readonly stage: "sent"; readonly op: MediaOp; readonly peer: RpcPeer }
  | { readonly stage: "adopted"; readonly peer: RpcPeer };

/** Commands wait on `promise`; it settles once, when the state that owns it is left. */
interface Waiter {
  readonly promise: Promise<RpcPeer>;
  resolve(peer: RpcPeer): void;
  reject(error: RpcRequestError): void;
}

type LinkState =
  /** No bridge, nothing waiting. */
  | { readonly kind: "idle" }
  /** The bridge dropped; `lostTimer` declares the room's media lost unless a bridge attaches first. */
  | { readonly kind: "waitingForReturn"; readonly lostTimer: Timer }
  /**
   * The pool was asked for a bridge; commands wait on `waiter`. No timer: the summon is given up
   * when the pool fails, or when the room's alarm expires the last media request waiting for it
   * (`expire`), so an object evicted meanwhile leaves no timer behind. `lostTimer` is still running
   * when the summon follows a drop.
   */
  | { readonly kind: "summoning"; readonly waiter: Waiter; readonly lostTimer: Timer | null }
  /** A bridge socket arrived; `sync` is in flight and commands wait on `waiter`. */
  | { readonly kind: "syncing"; readonly socket: WebSocket; readonly peer: RpcPeer; readonly waiter: Waiter }
  /** Synced: `ready` is resolved (commands chain on it so they keep their order). */
  | { readonly kind: "attached"; readonly socket: WebSocket; readonly peer: RpcPeer; readonly ready: Promise<RpcPeer> };

type LinkStateKind = LinkState["kind"];

const ALLOWED: Readonly<Record<LinkStateKind, readonly LinkStateKind[]>> = {
  idle: ["summoning", "syncing", "attached"],
  waitingForReturn: ["idle", "summoning", "syncing"],
  summoning: ["idle", "waitingForReturn", "syncing"],
  syncing: ["idle", "waitingForReturn", "syncing", "attached"],
  attached: ["idle", "waitingForReturn", "syncing"],
};

export class RoomMediaLink {
  readonly #host: MediaLinkHost;
  readonly #timeoutMs: number;
  #state: LinkState = { kind: "idle" };
  /** Media requests (by ref) this instance holds, sent or adopted; forgotten once answered or given up. */
  readonly #requests = new Map<string, RequestStage>();

  constructor(host: MediaLinkHost, timeoutMs: number) {
    this.#host = host;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * After hibernation or eviction: the bridge socket is still open, nothing to reconcile. The media
   * requests the room still waits for count as in flight on it (their answers arrive by ref; if the
   * socket drops they fail at once, as any request in flight).
   */
  adopt(ws: WebSocket): void {
    const peer = this.#peerFor(ws);
    this.#transition({ kind: "attached", socket: ws, peer, ready: Promise.resolve(peer) });
    for (const { ref } of this.#host.pendingRefs()) {
      if (!this.#requests.has(ref)) this.#requests.set(ref, { stage: "adopted", peer });
    }
  }

  /** Whether a bridge socket is open (attached or syncing). */
  hasSocket(): boolean {
    return this.#state.kind === "attached" || this.#state.kind === "syncing";
  }

  /**
   * The room stops waiting for `ref` (its deadline passed): this instance forgets it (a command still
   * queued is never sent) and says why it timed out. Null: the core's own message ("<op> timed out
   * after N ms") applies: an earlier instance (before a hibernation or eviction) sent it on the
   * bridge socket that is still open. When the last request waiting for a summon expires, the
   * summon is given up, so the next request summons afresh.
   */
  expire(ref: string): RpcError | null {
    const request = this.#requests.get(ref);
    this.#requests.delete(ref);
    this.#forgetSettled();
    const noBridge = rpcError(RoomCode.MEDIA_GENERIC, `no media bridge attached within ${this.#timeoutMs} ms`);
    const state = this.#state;
    if (state.kind === "summoning" && ![...this.#requests.values()].some((r) => r.stage === "queued")) {
      this.#summonFailed(state.waiter, noBridge);
    }
    if (request?.stage === "sent") {
      return rpcError(RoomCode.MEDIA_GENERIC, `${request.op} timed out after ${this.#timeoutMs} ms`);
    }
    if (request?.stage === "queued" || !this.hasSocket()) return noBridge;
    return null;
  }

  /** A bridge opened `/bridge/rooms/:room`: reconcile, then release the commands waiting for it. */
  attach(ws: WebSocket): void {
    const previous = this.#state;
    if ((previous.kind === "syncing" || previous.kind === "attached") && previous.socket !== ws) {
      previous.peer.closed("replaced by a new bridge connection");
      this.#failInFlight(previous.peer, "replaced by a new bridge connection");
      closeQuietly(previous.socket, CloseCode.BRIDGE_REPLACED, "replaced by a new bridge connection");
    }
    const peer = this.#peerFor(ws);
    // Commands held while summoning now wait for this socket's sync.
    const waiter = previous.kind === "summoning" ? previous.waiter : newWaiter();
    this.#transition({ kind: "syncing", socket: ws, peer, waiter });
    // Requests this instance does not hold were sent by an earlier one (before an eviction) on a
    // socket that is gone, or were waiting for a bridge in its memory: nothing will send or answer
    // them on this socket, so they fail now (and are undone) instead of at their deadline.
    for (const { ref, op } of this.#host.pendingRefs()) {
      if (this.#requests.has(ref)) continue;
      const what = op === "custom" ? "customRequest" : op;
      const message = `The room restarted while ${what} waited for the media bridge; try again`;
      this.#host.giveUp(ref, rpcError(RoomCode.MEDIA_GENERIC, message));
    }
    const { users, withMedia } = this.#host.roster();
    peer.request("sync", { users }).then(
      (result) => {
        const parsed = mediaCommandResults.sync.safeParse(result);
        const held = parsed.success ? parsed.data.held : [];
        const lost = withMedia.filter((u) => !held.includes(u));
        if (this.#isSyncing(peer)) this.#transition({ kind: "attached", socket: ws, peer, ready: waiter.promise });
        if (lost.length > 0) {
          const error = "The media connection was lost; publish and subscribe again";
          this.#host.deliver({ type: "mediaEvent", event: { event: "mediaLost", users: lost, error } });
        }
        waiter.resolve(peer);
      },
      (error: unknown) => {
        // The commands held for this sync fail; later ones use the socket as it is (never a spent promise).
        if (this.#isSyncing(peer))
          this.#transition({ kind: "attached", socket: ws, peer, ready: Promise.resolve(peer) });
        waiter.reject(asRpcRequestError(error));
      },
    );
  }

  receive(frame: string | ArrayBuffer): void {
    const state = this.#state;
    if (state.kind === "syncing" || state.kind === "attached") state.peer.receive(frame);
  }

  /**
   * The bridge socket closed: requests in flight fail now; the next command
   * summons a bridge again. A bridge that comes back within the grace period
   * reconciles with `sync`; otherwise everyone's media counts as lost, so
   * clients are told to publish and subscribe again. `expected`: the room
   * released its bridge itself, nothing is lost.
   */
  gone(ws: WebSocket, expected = false): void {
    const state = this.#state;
    if ((state.kind !== "syncing" && state.kind !== "attached") || state.socket !== ws) return;
    state.peer.closed("media bridge disconnected");
    this.#failInFlight(state.peer, "media bridge disconnected");
    if (expected) return this.#transition({ kind: "idle" });
    this.#transition({ kind: "waitingForReturn", lostTimer: this.#startLostTimer() });
  }

  send(command: MediaCommand, ref: string | null): void {
    const ready = this.#readyPromise(needsBridge(command, ref) ? commandUser(command) : null);
    if (ready === null) {
      // Nothing holds media for this room, and this command needs none.
      if (command.op === "releaseRoom") this.#host.released();
      return;
    }
    const { op, ...params } = command;
    if (ref !== null) return this.#sendRequest(ready, ref, op, params);
    ready
      .then((peer) => peer.request(op, params, this.#timeoutMs))
      .then(
        () => {
          if (op === "releaseRoom") this.#releaseBridge();
        },
        (error: unknown) => {
          const rpc = toRpcError(error);
          this.#host.log({ msg: "media command failed", op, code: rpc.code, error: rpc.message });
          if (op === "releaseRoom") this.#releaseBridge();
          if (!isLinkFailure(asRpcRequestError(error))) this.#host.refused(command, rpc);
        },
      );
  }

  /**
   * A command that answers a client request: sent with its ref as id, once the bridge is ready (in
   * order with the other commands), unless the room stopped waiting for it meanwhile. Its answer
   * comes back through `#onResponse`; no timer here (the alarm enforces the stored deadline).
   */
  #sendRequest(ready: Promise<RpcPeer>, ref: string, op: MediaOp, params: object): void {
    this.#forgetSettled();
    this.#requests.set(ref, { stage: "queued", op });
    ready.then(
      (peer) => {
        if (this.#requests.get(ref)?.stage !== "queued") return;
        if (!this.#host.isPending(ref)) {
          // Given up while it waited for the bridge (timeout, the asker left): never sent.
          this.#requests.delete(ref);
          return;
        }
        try {
          peer.sendRequest(ref, op, params);
          this.#requests.set(ref, { stage: "sent", op, peer });
        } catch (error) {
          this.#requests.delete(ref);
          this.#host.deliver({ type: "mediaResult", ref, outcome: { ok: false, error: toRpcError(error) } });
        }
      },
      (error: unknown) => {
        if (this.#requests.get(ref)?.stage !== "queued") return;
        this.#requests.delete(ref);
        this.#host.deliver({ type: "mediaResult", ref, outcome: { ok: false, error: toRpcError(error) } });
      },
    );
  }

  /** An answer the peer was not waiting for: a media request's, by ref, whichever instance sent it. */
  #onResponse(id: RequestId, outcome: RpcOutcome): void {
    if (typeof id === "string" && this.#host.isPending(id)) {
      this.#requests.delete(id);
      this.#host.deliver({ type: "mediaResult", ref: id, outcome });
      return;
    }
    if (typeof id === "string") this.#requests.delete(id);
    // A request the room gave up on (undone on the bridge then), or one of an earlier peer's.
    this.#host.log({ msg: "late bridge answer ignored", id, ok: outcome.ok });
  }

  /** The socket of `peer` is gone: the media requests in flight on it fail now with 301. */
  #failInFlight(peer: RpcPeer, reason: string): void {
    for (const [ref, request] of [...this.#requests]) {
      if (request.stage === "queued" || request.peer !== peer) continue;
      this.#requests.delete(ref);
      if (!this.#host.isPending(ref)) continue;
      const error = rpcError(RoomCode.MEDIA_GENERIC, reason);
      this.#host.deliver({ type: "mediaResult", ref, outcome: { ok: false, error } });
    }
  }

  /** Drops what the room no longer waits for (given up, never answered), so the map stays small. */
  #forgetSettled(): void {
    for (const ref of [...this.#requests.keys()]) if (!this.#host.isPending(ref)) this.#requests.delete(ref);
  }

  /** What a command waits on; `summonFor` (a user) summons a bridge when none is coming. */
  #readyPromise(summonFor: string | null): Promise<RpcPeer> | null {
    const state = this.#state;
    switch (state.kind) {
      case "attached":
        return state.ready;
      case "syncing":
      case "summoning":
        return state.waiter.promise;
      case "idle":
      case "waitingForReturn":
        return summonFor === null ? null : this.#summon(summonFor);
    }
  }

  #summon(user: string): Promise<RpcPeer> {
    const waiter = newWaiter();
    const lostTimer = this.#state.kind === "waitingForReturn" ? this.#state.lostTimer : null;
    this.#transition({ kind: "summoning", waiter, lostTimer });
    this.#host.assign(user).then(
      (assignment) => {
        // Success: the bridge's socket arrives through attach().
        if (!assignment.ok) this.#summonFailed(waiter, assignment.error);
      },
      (error: unknown) => this.#summonFailed(waiter, asRpcRequestError(error)),
    );
    return waiter.promise;
  }

  /**
   * The summon behind `waiter` failed: its commands fail, and the link goes back
   * to where it was, so the next command (or a bridge socket) starts afresh. If a
   * bridge socket already arrived, the failure no longer matters.
   */
  #summonFailed(waiter: Waiter, error: RpcError | RpcRequestError): void {
    const state = this.#state;
    if (state.kind !== "summoning" || state.waiter !== waiter) return;
    this.#transition(state.lostTimer ? { kind: "waitingForReturn", lostTimer: state.lostTimer } : { kind: "idle" });
    waiter.reject(error instanceof RpcRequestError ? error : new RpcRequestError(error));
  }

  #startLostTimer(): Timer {
    const timer = setTimeout(() => {
      const state = this.#state;
      if (state.kind === "waitingForReturn" && state.lostTimer === timer) this.#transition({ kind: "idle" });
      else if (state.kind === "summoning" && state.lostTimer === timer) this.#transition({ ...state, lostTimer: null });
      else return; // a bridge attached meanwhile: `sync` reconciles
      this.#host.deliver({
        type: "mediaEvent",
        event: { event: "mediaLost", error: "The media bridge was lost; publish and subscribe again" },
      });
    }, BRIDGE_RETURN_GRACE_MS);
    return timer;
  }

  #releaseBridge(): void {
    const state = this.#state;
    if (state.kind === "syncing" || state.kind === "attached") {
      this.gone(state.socket, true);
      closeQuietly(state.socket, CloseCode.NORMAL, "room released");
    }
    this.#host.released();
  }

  #isSyncing(peer: RpcPeer): boolean {
    return this.#state.kind === "syncing" && this.#state.peer === peer;
  }

  /** The one place the state changes: checks the move and stops the timers the new state does not keep. */
  #transition(next: LinkState): void {
    const previous = this.#state;
    if (!ALLOWED[previous.kind].includes(next.kind)) {
      throw new Error(`media link: no transition from ${previous.kind} to ${next.kind}`);
    }
    const kept = timersOf(next);
    for (const timer of timersOf(previous)) if (!kept.includes(timer)) clearTimeout(timer);
    this.#state = next;
  }

  #peerFor(ws: WebSocket): RpcPeer {
    return new RpcPeer(
      { send: (frame) => ws.send(frame) },
      {
        timeoutMs: this.#timeoutMs,
        // Never `media-…` (the refs), and never an id an earlier instance or socket used.
        idPrefix: `${crypto.randomUUID().slice(0, 8)}-`,
        onNotification: (method, params) => this.#onEvent(method, params),
        onUntrackedResponse: (id, outcome) => this.#onResponse(id, outcome),
      },
    );
  }

  #onEvent(method: string, params: unknown): void {
    if (!Object.hasOwn(mediaEventParams, method)) {
      this.#host.log({ msg: "unknown bridge event", method });
      return;
    }
    const event = method as MediaEventMethod;
    const parsed = mediaEventParams[event].safeParse(params);
    if (!parsed.success) {
      this.#host.log({ msg: "malformed bridge event", method });
      return;
    }
    this.#host.deliver({ type: "mediaEvent", event: { event, ...parsed.data } as MediaEvent });
  }
}

function timersOf(state: LinkState): Timer[] {
  switch (state.kind) {
    case "waitingForReturn":
      return [state.lostTimer];
    case "summoning":
      return state.lostTimer ? [state.lostTimer] : [];
    default:
      return [];
  }
}

/**
 * Whether the command summons a bridge when none is attached: requests, their ICE candidates, and
 * `record` (a recording started by the REST API may be the first thing to need one after a drop).
 * Releases and stops need none: without a bridge there is nothing to release or stop.
 */
function needsBridge(command: MediaCommand, ref: string | null): boolean {
  return ref !== null || command.op === "addIceCandidate" || command.op === "record";
}

function commandUser(command: MediaCommand): string {
  return "user" in command ? command.user : "";
}

function newWaiter(): Waiter {
  let resolve!: (peer: RpcPeer) => void;
  let reject!: (error: RpcRequestError) => void;
  const promise = new Promise<RpcPeer>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Commands attach their own handlers; this only keeps an unobserved rejection quiet.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

function asRpcRequestError(error: unknown): RpcRequestError {
  if (error instanceof RpcRequestError) return error;
  return new RpcRequestError(rpcError(RoomCode.MEDIA_GENERIC, String(error)));
}

/** A failure of the link itself (closed, unsendable, timed out), not an answer of the bridge. */
function isLinkFailure(e: RpcRequestError): boolean {
  return (
    e.code === RoomCode.TRANSPORT || e.code === RoomCode.TRANSPORT_REQUEST || e.code === RoomCode.TRANSPORT_RESPONSE
  );
}

/** What the client sees: the bridge's own error, or a link failure as a media error (301). */
function toRpcError(error: unknown): RpcError {
  const e = asRpcRequestError(error);
  return { code: isLinkFailure(e) ? RoomCode.MEDIA_GENERIC : e.code, message: e.message };
}
