/**
 * The bridge's media servers: one connection per configured KMS, how many
 * pipelines each holds, and where a new room's pipeline goes (the shared
 * selection policy of protocol/media-server-selection.ts).
 */
import type { KmsConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import { RpcRequestError } from "../../protocol/rpc-peer.ts";
import { rpcError } from "../../protocol/errors.ts";
import { selectMediaServer } from "../../protocol/media-server-selection.ts";
import {
  type MediaServer,
  type MediaServerFactory,
  type MediaServerState,
  type Pipeline,
  MediaServerError,
} from "./media-server.ts";

export class KmsSlot {
  readonly index: number;
  readonly uri: string;
  readonly limit: number;
  readonly server: MediaServer;
  /** Pipelines this bridge holds (or is creating) on this KMS. */
  pipelines = 0;

  constructor(index: number, config: KmsConfig, server: MediaServer) {
    this.index = index;
    this.uri = config.uri;
    this.limit = config.limit;
    this.server = server;
  }

  get connected(): boolean {
    return this.server.state === "connected";
  }

  /** As the selection policy sees it. */
  get available(): boolean {
    return this.connected;
  }
}

export interface KmsPoolOptions {
  readonly kms: readonly KmsConfig[];
  readonly factory: MediaServerFactory;
  /** See MediaServerOptions.dialUri. */
  readonly dialUri?: (uri: string) => string;
  readonly requestTimeoutMs: number;
  readonly lostAfterMs: number;
  readonly log: Logger;
  /** Everything on `slot` is gone. */
  readonly onLost: (slot: KmsSlot, reason: string) => void;
  readonly onStateChange?: (slot: KmsSlot, state: MediaServerState) => void;
}

export class KmsPool {
  readonly slots: KmsSlot[];
  /** Where the next round-robin pick starts. */
  private cursor = 0;
  private readonly options: KmsPoolOptions;

  constructor(options: KmsPoolOptions) {
    this.options = options;
    this.slots = options.kms.map((config, index) => {
      let slot: KmsSlot | undefined;
      const server = options.factory(config.uri, {
        requestTimeoutMs: options.requestTimeoutMs,
        lostAfterMs: options.lostAfterMs,
        ...(options.dialUri ? { dialUri: options.dialUri } : {}),
        log: (level, msg, fields) => options.log[level](msg, fields),
        listeners: {
          state: (state) => {
            if (slot) options.onStateChange?.(slot, state);
          },
          lost: (reason) => {
            if (!slot) return;
            slot.pipelines = 0;
            options.onLost(slot, reason);
          },
        },
      });
      slot = new KmsSlot(index, config, server);
      return slot;
    });
  }

  get totalPipelines(): number {
    return this.slots.reduce((sum, slot) => sum + slot.pipelines, 0);
  }

  get connectedCount(): number {
    return this.slots.filter((slot) => slot.connected).length;
  }

  /** Filters can be offered when every KMS this bridge can use has them. */
  get supportsFilters(): boolean {
    const connected = this.slots.filter((slot) => slot.connected);
    return connected.length > 0 && connected.every((slot) => slot.server.supportsFilters);
  }

  /** Recording can be offered when every KMS this bridge can use has RecorderEndpoint. */
  get supportsRecording(): boolean {
    const connected = this.slots.filter((slot) => slot.connected);
    return connected.length > 0 && connected.every((slot) => slot.server.supportsRecording);
  }

  /** Simulcast can be offered when every media server this bridge can use forwards it by layer. */
  get supportsSimulcast(): boolean {
    const connected = this.slots.filter((slot) => slot.connected);
    return connected.length > 0 && connected.every((slot) => slot.server.supportsSimulcast);
  }

  /** Waits (bounded) for the KMSes still making their first connection, so `register` knows the capabilities. */
  async settle(timeoutMs: number): Promise<void> {
    const first = this.slots.filter((slot) => slot.server.state === "connecting");
    await Promise.all(first.map((slot) => slot.server.whenConnected(timeoutMs).catch(() => undefined)));
  }

  /** Picks a KMS for `user` (FixedNKmsManager rules) and creates a pipeline there. */
  async allocate(user: string): Promise<{ slot: KmsSlot; pipeline: Pipeline }> {
    const choice = selectMediaServer(this.slots, user, this.cursor);
    if (!choice.ok) throw new RpcRequestError(rpcError(choice.code, choice.message));
    this.cursor = choice.nextCursor;
    const slot = this.slots[choice.index]!;
    slot.pipelines += 1;
    this.options.log.debug("KMS chosen for a new pipeline", { kms: slot.uri, rule: choice.rule, user });
    try {
      const pipeline = await slot.server.createPipeline();
      return { slot, pipeline };
    } catch (error) {
      slot.pipelines = Math.max(0, slot.pipelines - 1);
      throw error instanceof MediaServerError ? error : new MediaServerError("other", String(error));
    }
  }

  /** A pipeline on `slot` was released (or lost). */
  free(slot: KmsSlot): void {
    slot.pipelines = Math.max(0, slot.pipelines - 1);
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((slot) => slot.server.close()));
  }
}
