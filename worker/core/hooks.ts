/**
 * The seams through which an application customises the room core without
 * editing it, like the original SDK's RoomHandler / user control classes.
 */
import type { RpcError } from "../../protocol/errors.ts";
import type { MediaCommand } from "../../protocol/bridge.ts";
import type { Effect, Json, Participant, RoomState } from "./types.ts";

export interface JoinRequest {
  readonly user: string;
  readonly room: string;
  /** True when this join would create the room. */
  readonly creating: boolean;
}

/** What a `customRequest` handler decided. */
export type CustomOutcome =
  | { readonly error: RpcError }
  /** Answer now, optionally changing the caller's attributes. */
  | { readonly result: Record<string, Json>; readonly attributes?: Record<string, Json> }
  /**
   * Run a media command first; `complete` runs when it succeeded. `undo`, if given, is sent to the
   * bridge when the room gives up on the command (timeout, asker gone), in case the bridge did it.
   */
  | { readonly media: MediaCommand; readonly data: Json; readonly undo?: MediaCommand };

export interface CustomRequestHandler {
  handle(request: { participant: Participant; params: Record<string, unknown>; state: RoomState }): CustomOutcome;
  /** The caller's new attributes once the media command of `handle` succeeded. */
  complete(participant: Participant, data: Json): Record<string, Json>;
}

export interface RoomConfig {
  /** demo.authRegex: user names allowed to *create* a room. */
  readonly authRegex: RegExp;
  /** How long a dropped socket keeps its seat (the original: 10 s). */
  readonly reconnectWindowMs: number;
  /** Seats in a room (those inside their reconnection window included); the next join gets 201. */
  readonly maxParticipants: number;
  /** ICE candidates a participant may send for one endpoint (per negotiation); the next get 303. */
  readonly maxIceCandidates: number;
  /** MEDIA_TIMEOUT_MS: how long a media request may wait for the bridge before the room answers 301. */
  readonly mediaTimeoutMs: number;
  /** Who may start and stop recordings from the room; absent: nobody (only the admin REST API). */
  readonly recording?: RecordingPolicy;
}

export interface RecordingPolicy {
  /** ALLOW_RECORDING_FROM_CLIENTS. */
  readonly fromClients: boolean;
  /** Only moderators may (JOIN_TOKEN_SECRET is set, so roles mean something). */
  readonly moderatorsOnly: boolean;
}

export interface RoomHooks {
  /** Extra admission rule; return an error to refuse the join. */
  readonly authorizeJoin?: (request: JoinRequest) => RpcError | null;
  /** Handles `customRequest`; without one, `customRequest` is refused. */
  readonly customRequest?: CustomRequestHandler;
  /**
   * Sees every effect the core produces, after the adapter carried it out
   * (joins and leaves are broadcasts, media commands are `media` effects…).
   * Called by the adapter, never by the pure core; must not throw.
   */
  readonly observe?: (room: string, effect: Effect) => void;
}

export interface CoreContext {
  readonly now: number;
  readonly config: RoomConfig;
  readonly hooks: RoomHooks;
}
