/**
 * `/bridge/rooms/:room`: the bridge's socket to one Room Durable Object.
 * The room sends media commands (requests); the bridge answers them and sends
 * media events (notifications). Every incoming frame is validated with the
 * bridge protocol's zod schemas; a bad frame gets a JSON-RPC error, never a
 * crash.
 *
 * Closing: a close with code 1000 from the room means "this room no longer
 * needs the bridge" (its media is released and the room forgotten); 4002, or
 * an upgrade refused with 409, means another bridge serves the room now (the
 * same: released, forgotten, never dialled again); any other close, or a
 * failed attempt, reconnects with backoff and a fresh token.
 */
import { mediaCommandParams, type MediaEvent, type MediaOp } from "../protocol/bridge.ts";
import { JsonRpcCode, rpcError } from "../protocol/errors.ts";
import { describeIssues } from "../protocol/jsonrpc.ts";
import { RpcPeer, RpcRequestError } from "../protocol/rpc-peer.ts";
import { CloseCode } from "../protocol/close-codes.ts";
import { roomAudience, signBridgeToken, type BridgeCredential } from "../protocol/tokens/bridge-token.ts";
import { toWebSocketUrl } from "./config.ts";
import type { Logger } from "./log.ts";
import type { BridgeMetrics } from "./metrics.ts";
import { type BackoffOptions, ReconnectingSocket } from "./reconnecting-socket.ts";
import { toRpcError } from "./media/room-errors.ts";
import type { RoomMedia } from "./media/room-media.ts";

/** Events kept while the link is down, sent when it is back (oldest dropped first). */
const MAX_OUTBOX = 500;

export interface RoomLinkOptions {
  readonly room: string;
  readonly workerUrl: string;
  readonly bridgeId: string;
  /** BRIDGE_SECRET (the master: any id), or `{bridgeKey}` (BRIDGE_KEY: this bridge's own key, good for its id only). */
  readonly secret: BridgeCredential;
  readonly media: RoomMedia;
  readonly metrics: BridgeMetrics;
  readonly log: Logger;
  readonly backoff?: BackoffOptions;
  readonly heartbeatMs?: number;
  /** The room closed the link with 1000: it no longer needs this bridge. */
  readonly onDetached: (room: string) => void;
}

export class RoomLink {
  readonly room: string;
  readonly media: RoomMedia;
  private readonly options: RoomLinkOptions;
  private readonly socket: ReconnectingSocket;
  private readonly peer: RpcPeer;
  private readonly outbox: string[] = [];
  private readonly openWaiters = new Set<() => void>();
  private detached = false;

  constructor(options: RoomLinkOptions) {
    this.options = options;
    this.room = options.room;
    this.media = options.media;
    const log = options.log.child({ room: options.room });
    this.peer = new RpcPeer(
      {
        send: (frame) => this.socket.send(frame),
      },
      {
        onRequest: (method, params) => this.handle(method, params),
        onNotification: (method) => log.debug("ignored a notification from the room", { method }),
      },
    );
    this.socket = new ReconnectingSocket({
      name: roomAudience(options.room),
      url: `${toWebSocketUrl(options.workerUrl)}/bridge/rooms/${encodeURIComponent(options.room)}`,
      headers: async () => ({
        Authorization: `Bearer ${await signBridgeToken(options.secret, { bridgeId: options.bridgeId, audience: roomAudience(options.room) })}`,
      }),
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.heartbeatMs !== undefined ? { heartbeatMs: options.heartbeatMs } : {}),
      log,
      onOpen: () => {
        this.peer.reopen();
        for (const wake of [...this.openWaiters]) wake();
        this.flush();
      },
      onMessage: (text) => this.peer.receive(text),
      onClose: ({ code, wasOpen, refusedStatus }) => {
        this.peer.closed(`room link closed (${code})`);
        if (wasOpen && code === CloseCode.NORMAL) {
          log.info("the room detached the bridge");
          this.detached = true;
          this.options.onDetached(this.room);
          return false;
        }
        // The pool gave the room to another bridge (this one's links dropped meanwhile): dialling
        // again would take it back and start a tug of war. Its media here is released instead.
        if ((wasOpen && code === CloseCode.BRIDGE_REPLACED) || refusedStatus === 409) {
          log.warn("another media bridge serves this room now; releasing its media here", { code, refusedStatus });
          this.detached = true;
          this.options.onDetached(this.room);
          return false;
        }
        return !this.detached;
      },
    });
  }

  get isOpen(): boolean {
    return this.socket.isOpen;
  }

  start(): void {
    this.socket.start();
  }

  retryNow(): void {
    this.socket.retryNow();
  }

  /** Resolves once the socket is open; rejects after `timeoutMs`. */
  whenOpen(timeoutMs: number): Promise<void> {
    if (this.socket.isOpen) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.openWaiters.delete(wake);
        reject(new Error(`the link to room ${this.room} did not open within ${timeoutMs} ms`));
      }, timeoutMs);
      const wake = (): void => {
        clearTimeout(timer);
        this.openWaiters.delete(wake);
        resolve();
      };
      this.openWaiters.add(wake);
    });
  }

  /** A media event for the room: sent now, or kept until the link is back. */
  notify(event: MediaEvent): void {
    const { event: method, ...params } = event;
    const frame = JSON.stringify({ method, params, jsonrpc: "2.0" });
    if (this.socket.isOpen) {
      try {
        this.socket.send(frame);
        return;
      } catch {
        // closing: keep it
      }
    }
    this.outbox.push(frame);
    if (this.outbox.length > MAX_OUTBOX) this.outbox.shift();
  }

  private flush(): void {
    while (this.outbox.length && this.socket.isOpen) {
      const frame = this.outbox.shift()!;
      try {
        this.socket.send(frame);
      } catch {
        this.outbox.unshift(frame);
        return;
      }
    }
  }

  /** Stops for good (the bridge is stopping, or the room detached). */
  async stop(code?: number, reason?: string): Promise<void> {
    this.detached = true;
    await this.socket.stop(code, reason);
    this.peer.closed("bridge stopping");
  }

  /** Drops the socket; it reconnects (tests). */
  drop(): void {
    this.socket.drop();
  }

  private async handle(method: string, params: unknown): Promise<unknown> {
    if (!isMediaOp(method)) {
      throw new RpcRequestError(
        rpcError(
          JsonRpcCode.METHOD_NOT_FOUND,
          `Method not found: ${method} (the bridge handles ${Object.keys(mediaCommandParams).join(", ")})`,
        ),
      );
    }
    const parsed = mediaCommandParams[method].safeParse(params ?? {});
    if (!parsed.success) {
      throw new RpcRequestError(
        rpcError(JsonRpcCode.INVALID_PARAMS, `Invalid params for ${method}: ${describeIssues(parsed.error)}`),
      );
    }
    const started = performance.now();
    // The params were validated by the schema of `method` just above.
    const handler = this.media.handlers[method] as (params: unknown) => Promise<unknown>;
    try {
      const result = await handler(parsed.data);
      this.options.metrics.observeCommand(method, (performance.now() - started) / 1000);
      return result;
    } catch (raw) {
      const error = toRpcError(raw);
      this.options.metrics.observeCommand(method, (performance.now() - started) / 1000, error.code);
      this.options.log.warn("media command failed", {
        room: this.room,
        op: method,
        code: error.code,
        error: error.message,
      });
      throw error;
    }
  }
}

function isMediaOp(method: string): method is MediaOp {
  return Object.hasOwn(mediaCommandParams, method);
}
