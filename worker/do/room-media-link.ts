/**
 * The room's end of its media bridge link: turns the core's media commands
 * into requests on the bridge socket and the bridge's answers and events back
 * into core inputs. Implements the `MediaPort` seam of the room core.
 *
 * When a command needs media and no bridge is attached, the link asks the
 * BridgePool for one and holds commands (in order) until the bridge's socket
 * arrives and the roster has been reconciled with `sync`.
 */
import type { Input } from "../core/types.ts";
import { mediaEventParams, mediaCommandResults, type MediaCommand, type MediaEvent, type MediaEventMethod } from "../../protocol/bridge.ts";
import { RoomCode, rpcError, type RpcError } from "../../protocol/errors.ts";
import { RpcPeer, RpcRequestError } from "../../protocol/rpc-peer.ts";
import { CloseCode } from "../../protocol/close-codes.ts";
import { closeQuietly } from "../ws-util.ts";
import type { Assignment } from "./bridge-pool.ts";

/** How long a dropped bridge link may take to come back before the room's media counts as lost. */
export const BRIDGE_RETURN_GRACE_MS = 3000;

export interface MediaLinkHost {
  /** Feeds an input to the room core. */
  deliver(input: Input): void;
  /** Everyone seated, and who of them has established media (for `sync`). */
  roster(): { users: string[]; withMedia: string[] };
  /** Asks the BridgePool for a bridge; resolves once the bridge is told to attach. */
  assign(user: string): Promise<Assignment>;
  /** The room released its media: the pool may forget the assignment. */
  released(): void;
  log(fields: Record<string, unknown>): void;
}

interface Waiter {
  readonly promise: Promise<RpcPeer>;
  resolve(peer: RpcPeer): void;
  reject(error: RpcRequestError): void;
}

export class RoomMediaLink {
  readonly host: MediaLinkHost;
  readonly timeoutMs: number;
  socket: WebSocket | null = null;
  peer: RpcPeer | null = null;
  /** Resolves once a bridge is attached and synced; shared so queued commands keep their order. */
  ready: Promise<RpcPeer> | null = null;
  waiter: Waiter | null = null;
  /** Runs out when a dropped bridge has not come back: its media is then gone. */
  lostTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(host: MediaLinkHost, timeoutMs: number) {
    this.host = host;
    this.timeoutMs = timeoutMs;
  }

  /** After hibernation: the bridge socket is still open, nothing to reconcile. */
  adopt(ws: WebSocket): void {
    this.socket = ws;
    this.peer = this.peerFor(ws);
    this.ready = Promise.resolve(this.peer);
  }

  /** A bridge opened `/bridge/rooms/:room`: reconcile, then release the commands waiting for it. */
  attach(ws: WebSocket): void {
    this.cancelLostTimer();
    if (this.socket && this.socket !== ws) {
      this.peer?.closed("replaced by a new bridge connection");
      closeQuietly(this.socket, CloseCode.BRIDGE_REPLACED, "replaced by a new bridge connection");
    }
    this.socket = ws;
    const peer = this.peerFor(ws);
    this.peer = peer;
    const waiter = this.waiter ?? newWaiter();
    this.waiter = null;
    this.ready = waiter.promise;
    const { users, withMedia } = this.host.roster();
    peer
      .request("sync", { users })
      .then((result) => {
        const parsed = mediaCommandResults.sync.safeParse(result);
        const held = parsed.success ? parsed.data.held : [];
        const lost = withMedia.filter((u) => !held.includes(u));
        if (lost.length > 0) {
          this.host.deliver({
            type: "mediaEvent",
            event: { event: "mediaLost", users: lost, error: "The media connection was lost; publish and subscribe again" },
          });
        }
        waiter.resolve(peer);
      })
      .catch((error: unknown) => waiter.reject(asRpcRequestError(error)));
  }

  receive(frame: string | ArrayBuffer): void {
    this.peer?.receive(frame);
  }

  /**
   * The bridge socket closed: requests in flight fail now; the next command
   * summons a bridge again. A bridge that comes back within the grace period
   * reconciles with `sync`; otherwise everyone's media counts as lost, so
   * clients are told to publish and subscribe again.
   */
  gone(ws: WebSocket, expected = false): void {
    if (ws !== this.socket) return;
    this.peer?.closed("media bridge disconnected");
    this.socket = null;
    this.peer = null;
    this.ready = null;
    if (expected) return;
    this.cancelLostTimer();
    this.lostTimer = setTimeout(() => {
      this.lostTimer = null;
      if (this.socket) return;
      this.host.deliver({
        type: "mediaEvent",
        event: { event: "mediaLost", error: "The media bridge was lost; publish and subscribe again" },
      });
    }, BRIDGE_RETURN_GRACE_MS);
  }

  cancelLostTimer(): void {
    if (this.lostTimer) clearTimeout(this.lostTimer);
    this.lostTimer = null;
  }

  isAttached(): boolean {
    return this.socket !== null;
  }

  send(command: MediaCommand, ref: string | null): void {
    const ready = this.ready ?? (ref !== null || command.op === "addIceCandidate" ? this.summon(commandUser(command)) : null);
    if (ready === null) {
      // Nothing holds media for this room, and this command needs none.
      if (command.op === "releaseRoom") this.host.released();
      return;
    }
    const { op, ...params } = command;
    ready
      .then((peer) => peer.request(op, params, this.timeoutMs))
      .then(
        (value) => {
          if (ref !== null) this.host.deliver({ type: "mediaResult", ref, outcome: { ok: true, value } });
          if (op === "releaseRoom") this.releaseBridge();
        },
        (error: unknown) => {
          const rpc = toRpcError(error);
          if (ref !== null) this.host.deliver({ type: "mediaResult", ref, outcome: { ok: false, error: rpc } });
          else this.host.log({ msg: "media command failed", op, code: rpc.code, error: rpc.message });
          if (op === "releaseRoom") this.releaseBridge();
        },
      );
  }

  summon(user: string): Promise<RpcPeer> {
    const waiter = newWaiter();
    this.waiter = waiter;
    this.ready = waiter.promise;
    const timer = setTimeout(() => {
      if (this.waiter === waiter) this.waiter = null;
      if (this.ready === waiter.promise) this.ready = null;
      waiter.reject(new RpcRequestError(rpcError(RoomCode.MEDIA_GENERIC, `no media bridge attached within ${this.timeoutMs} ms`)));
    }, this.timeoutMs);
    waiter.promise.then(() => clearTimeout(timer), () => clearTimeout(timer));
    this.host.assign(user).then(
      (assignment) => {
        if (assignment.ok) return; // the bridge's socket arrives through attach()
        clearTimeout(timer);
        if (this.waiter === waiter) this.waiter = null;
        if (this.ready === waiter.promise) this.ready = null;
        waiter.reject(new RpcRequestError(assignment.error));
      },
      (error: unknown) => {
        clearTimeout(timer);
        if (this.ready === waiter.promise) this.ready = null;
        waiter.reject(asRpcRequestError(error));
      },
    );
    return waiter.promise;
  }

  releaseBridge(): void {
    const ws = this.socket;
    this.gone(ws as WebSocket, true);
    if (ws) closeQuietly(ws, CloseCode.NORMAL, "room released");
    this.host.released();
  }

  peerFor(ws: WebSocket): RpcPeer {
    return new RpcPeer(
      { send: (frame) => ws.send(frame) },
      {
        timeoutMs: this.timeoutMs,
        onNotification: (method, params) => this.onEvent(method, params),
      },
    );
  }

  onEvent(method: string, params: unknown): void {
    if (!Object.hasOwn(mediaEventParams, method)) {
      this.host.log({ msg: "unknown bridge event", method });
      return;
    }
    const event = method as MediaEventMethod;
    const parsed = mediaEventParams[event].safeParse(params);
    if (!parsed.success) {
      this.host.log({ msg: "malformed bridge event", method });
      return;
    }
    this.host.deliver({ type: "mediaEvent", event: { event, ...parsed.data } as MediaEvent });
  }
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
  return error instanceof RpcRequestError ? error : new RpcRequestError(rpcError(RoomCode.MEDIA_GENERIC, String(error)));
}

/** What the client sees: the bridge's own error, or a link failure as a media error (301). */
function toRpcError(error: unknown): RpcError {
  const e = asRpcRequestError(error);
  const linkFailure = e.code === RoomCode.TRANSPORT || e.code === RoomCode.TRANSPORT_REQUEST || e.code === RoomCode.TRANSPORT_RESPONSE;
  return { code: linkFailure ? RoomCode.MEDIA_GENERIC : e.code, message: e.message };
}
