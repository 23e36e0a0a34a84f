/**
 * Data of the room core (the Room SDK): its state, its inputs, its effects.
 * Everything here is plain, serialisable data; the core itself is pure.
 */
import type { RpcError } from "../../protocol/errors.ts";
import type { RequestId } from "../../protocol/jsonrpc.ts";
import type { Notification } from "../../protocol/room.ts";
import type { MediaCommand, MediaEvent } from "../../protocol/bridge.ts";
import type { Role } from "../../protocol/tokens/join-token.ts";
import type { IceServer } from "../../protocol/ice-servers.ts";

export type { Role };

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A stream's publication: `none` is its absence from `Participant.streams`. */
export type PublishState = "none" | "pending" | "live";
export type SubscriptionState = "pending" | "live";

/** One published stream: `pending` while the bridge negotiates it, then `live` until it is unpublished. */
export interface PublishedStream {
  readonly state: "pending" | "live";
  readonly loopback: boolean;
}

export interface Participant {
  /** Stable across reconnections: `connect {sessionId}` resumes it. */
  readonly session: string;
  readonly user: string;
  /** Joined with `multiStream`: it hears of streams other than the webcam (legacy clients never do). */
  readonly multiStream: boolean;
  /** Stream name (`webcam`, `screen`…) → its publication; at most MAX_STREAMS_PER_PARTICIPANT. */
  readonly streams: Readonly<Record<string, PublishedStream>>;
  readonly dataChannels: boolean;
  /** Sender stream id (`<user>_<stream>`) → state of this participant's subscription to it. */
  readonly subscriptions: Readonly<Record<string, SubscriptionState>>;
  /** Application state of custom request handlers (the original kept it in session attributes). */
  readonly attributes: Readonly<Record<string, Json>>;
  /** Set while the socket is gone; the seat is kept until `disconnectedAt + window`. */
  readonly disconnectedAt: number | null;
  /** Granted by the join token (`participant` without one): moderators may evict and force-unpublish. */
  readonly role: Role;
}

/**
 * A client request waiting for the media bridge; persisted, as the object may
 * hibernate or be evicted meanwhile. Its ref (the key in `RoomState.pending`)
 * is also the JSON-RPC id of the command on the bridge link, so whichever
 * instance of the room object receives the answer can match it.
 */
export interface PendingMedia {
  readonly session: string;
  readonly id: RequestId | null;
  readonly op: "publish" | "subscribe" | "custom";
  /** publish: the stream name (`webcam` when absent). */
  readonly stream?: string;
  /** subscribe: the sender stream id (`<user>_<stream>`). */
  readonly sender?: string;
  readonly data?: Json;
  /** When the room stops waiting (ms since the epoch): the alarm then answers 301 (`mediaGiveUp`). */
  readonly deadline: number;
  /** What undoes the command on the bridge if it is abandoned (custom requests; publish/subscribe have their own). */
  readonly undo?: MediaCommand;
}

/**
 * The room's running recording (one at most): persisted with the room, so it
 * survives a restart. Individual mode: one file per live published stream.
 */
export interface ActiveRecording {
  readonly id: string;
  /** When it started (ms since the epoch): the origin of every file's offset. */
  readonly startedAt: number;
  /** The upload token the bridge gets with each `record` (protocol/recordings.ts), signed once per recording. */
  readonly token: string;
  /** Files made so far: the next one is number `seq + 1` (file names carry it). */
  readonly seq: number;
  /**
   * Stream id (`<user>_<stream>`) → the file of that stream being recorded. A stream stays here
   * while it is live even if its file failed, so a refused file is not retried on every step.
   */
  readonly files: Readonly<Record<string, string>>;
}

/** A file of a recording as the ledger first hears of it. */
export interface LedgerFile {
  readonly name: string;
  readonly user: string;
  readonly stream: string;
  /** Where the file starts on the recording's timeline (ms after its start); the bridge's figure replaces it on delivery. */
  readonly startOffsetMs: number;
}

/**
 * What a room tells the recording ledger (worker/do/recording-ledger.ts), in order, through its
 * durable outbox (worker/do/recording-outbox.ts). Every op is idempotent: a retry changes nothing.
 */
export type LedgerOp =
  | {
      readonly op: "start";
      readonly id: string;
      readonly room: string;
      readonly name?: string;
      readonly startedAt: number;
      readonly files: readonly LedgerFile[];
    }
  /** A stream published while the recording runs got a file. */
  | { readonly op: "addFile"; readonly id: string; readonly file: LedgerFile }
  /** The file's stream ended (unpublish, leave, media lost): the bridge now uploads it; the delivery deadline starts. */
  | { readonly op: "endFile"; readonly id: string; readonly name: string; readonly at: number }
  /** The bridge refused to record the file. */
  | { readonly op: "failFile"; readonly id: string; readonly name: string; readonly reason: string }
  | { readonly op: "stop"; readonly id: string; readonly at: number };

export interface RoomState {
  readonly room: string;
  readonly seq: number;
  readonly participants: ReadonlyMap<string, Participant>;
  readonly pending: ReadonlyMap<string, PendingMedia>;
  /**
   * ICE candidates received, per session then per endpoint name, for the
   * MAX_ICE_CANDIDATES cap; restarted by each new negotiation of that
   * endpoint. Not persisted: a restarted object counts from zero.
   */
  readonly iceCandidates: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** The running recording, or null. */
  readonly recording: ActiveRecording | null;
}

export interface Grant {
  readonly role?: Role;
  readonly iceServers?: readonly IceServer[];
  /** For `joinRoom`: whether every attached media server forwards simulcast (the adapter asks the bridge pool). */
  readonly simulcast?: boolean;
  /**
   * For `startRecording`: the new recording's id and its upload token (signing is asynchronous, so
   * the adapter does it before the core runs), or why this server cannot record.
   */
  readonly recording?: RecordingGrant;
}

export type RecordingGrant = { readonly id: string; readonly token: string } | { readonly unavailable: string };

export type AdminAction = { kind: "evict"; user: string } | { kind: "unpublish"; user: string; stream: string };

/** The administrator (admin REST API) starts or stops the room's recording; the adapter checked it may. */
export type RecordingAction =
  | { kind: "start"; id: string; token: string; name?: string }
  | { kind: "stop"; id: string };

export type MediaOutcome = { ok: true; value: unknown } | { ok: false; error: RpcError };

export type Input =
  /**
   * `grant`: what only the adapter can give, never read from params: the role a verified join
   * token granted, the ICE servers (with TURN credentials) for a joinRoom or connect answer.
   */
  | { type: "request"; session: string; id: RequestId | null; method: string; params: unknown; grant?: Grant }
  /** The administrator (admin REST API) acts on a participant; the adapter checked that it exists. */
  | { type: "admin"; action: AdminAction }
  | { type: "socketClosed"; session: string }
  | { type: "mediaResult"; ref: string; outcome: MediaOutcome }
  /**
   * The room stops waiting for the media command `ref` (its deadline passed, or nothing can answer
   * it any more): 301 `error` to the asker, and the command is undone on the bridge.
   */
  | { type: "mediaGiveUp"; ref: string; error: RpcError }
  | { type: "mediaEvent"; event: MediaEvent }
  | { type: "recording"; action: RecordingAction }
  /** The bridge refused `record` for `file` (its own error, not a lost link): the file fails with `reason`. */
  | { type: "recordingRefused"; recording: string; file: string; reason: string }
  | { type: "tick" }
  | { type: "close"; reason: string };

export type Effect =
  | { kind: "reply"; session: string; id: RequestId; result: Record<string, unknown> }
  | { kind: "error"; session: string; id: RequestId | null; error: RpcError }
  | { kind: "notify"; session: string; notification: Notification }
  /**
   * To every connected participant except `except`: serialised once, sent N times. `audience`:
   * only the participants that joined with `multiStream` (`multiStream`) or without (`legacy`).
   */
  | { kind: "broadcast"; except: string | null; notification: Notification; audience?: Audience }
  | { kind: "close"; session: string; code: number; reason: string }
  /** The socket of session `from` now speaks for session `to` (a resumed session). */
  | { kind: "bind"; from: string; to: string }
  | { kind: "media"; command: MediaCommand; ref: string | null }
  | { kind: "alarm"; at: number | null }
  | { kind: "directory"; open: boolean }
  /** For the recording ledger: written to the room's outbox in the same step, delivered after. */
  | { kind: "ledger"; op: LedgerOp };

export type Audience = "multiStream" | "legacy";

/** Whether `p` is in `audience` (absent: everyone). */
export function inAudience(p: Participant, audience: Audience | undefined): boolean {
  return audience === undefined || (audience === "multiStream") === p.multiStream;
}

export interface Step {
  readonly state: RoomState;
  readonly effects: Effect[];
}

export function emptyRoom(room: string): RoomState {
  return { room, seq: 0, participants: new Map(), pending: new Map(), iceCandidates: new Map(), recording: null };
}
