/**
 * The Room's options, environment and events, shared by the modules the Room
 * is made of (roster, notifications, media recovery, reconnection).
 */
import type { RpcRequestError } from "../../../protocol/rpc-peer.ts";
import type { ConnectionOptions } from "./connection.ts";
import type { SpeakingOptions } from "./speaking.ts";
import type { Participant } from "./participant.ts";
import type { ConnectionState } from "./state.ts";
import type { Stream } from "./stream.ts";

export interface RoomOptions {
  /** The room's name (created if it does not exist). */
  readonly room: string;
  /** This participant's name in the room. */
  readonly user: string;
  /** Receive every published stream automatically (default true). With false, call `stream.subscribe()` yourself. */
  readonly subscribeToStreams?: boolean;
  /** Ask the server for DataChannels on this participant's endpoints. */
  readonly dataChannels?: boolean;
  /**
   * Who is speaking (`stream-speaking`, `stream-stopped-speaking`,
   * `active-speaker-changed`), measured here with WebAudio: true (default),
   * false to turn it off, or the detector's settings. Off where WebAudio is
   * missing (Node).
   */
  readonly speakerDetection?: boolean | SpeakingOptions;
}

export interface ReconnectOptions {
  /** Give up after this long without getting the session back (default 30 s). */
  readonly timeoutMs: number;
  /** Delay before the second attempt; it doubles up to `maxDelayMs` (the first attempt is immediate). */
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

/** What a Room gets from its KurentoRoom. */
export interface RoomEnvironment {
  readonly url: string;
  readonly connection: ConnectionOptions;
  readonly rtcConfiguration: RTCConfiguration;
  /** null: never reconnect (a drop closes the room). */
  readonly reconnect: ReconnectOptions | null;
  /** After `mediaError` or failed ICE, publish / subscribe again where the media is gone (default true). */
  readonly autoRecoverMedia: boolean;
  readonly rpcParams: Record<string, unknown>;
}

export interface RoomConnectedEvent {
  /** The participants already in the room (not including the local one). */
  readonly participants: Participant[];
  /** Their published streams. */
  readonly streams: Stream[];
}

export interface MediaErrorEvent {
  readonly error: string;
  /** The stream a failed publish, subscription or recovery concerns. */
  readonly stream?: Stream;
  /**
   * The server's `mediaError`: the ids (`<user>_webcam`) of the streams whose
   * media is gone for this client. Absent when the server did not say (an
   * older server, or a room-wide failure: all of this client's media).
   */
  readonly streams?: string[];
}

/** How a participant's stay ended by eviction: `by` a moderator (absent: the server), with the room or alone. */
export interface Eviction {
  readonly by?: string;
  /** The whole room was closed (`roomClosed` followed), not just this participant removed. */
  readonly roomClosed: boolean;
}

export interface RoomEvents {
  "room-connected": RoomConnectedEvent;
  "error-room": { error: RpcRequestError };
  "room-closed": { room: string };
  "participant-joined": { participant: Participant };
  "participant-left": { participant: Participant };
  "participant-evicted": { localParticipant: Participant };
  "participant-published": { participant: Participant };
  "participant-unpublished": { participant: Participant };
  /** The local stream is published (the server's answer is applied). */
  "stream-published": { stream: Stream };
  "stream-unpublished": { stream: Stream };
  /** A moderator (`by`) or the administrator (no `by`) stopped the local stream; `stream-unpublished` follows. */
  "stream-force-unpublished": { stream: Stream; by?: string };
  /** A remote stream is being received (the server's answer is applied). */
  "stream-subscribed": { stream: Stream };
  "stream-unsubscribed": { stream: Stream };
  /** A remote stream became available (subscribed automatically unless `subscribeToStreams: false`). */
  "stream-added": { stream: Stream };
  /** A remote stream is gone (its participant unpublished or left). */
  "stream-removed": { stream: Stream };
  /** Media was negotiated again after a loss (publish or subscription restored). */
  "stream-recovered": { stream: Stream };
  "error-media": MediaErrorEvent;
  /** A stream's sound turned to speech (the local microphone or a received stream; never a shared screen). */
  "stream-speaking": { stream: Stream };
  "stream-stopped-speaking": { stream: Stream };
  /** The loudest speaking stream changed (null: nobody speaks); at most about twice a second. */
  "active-speaker-changed": { stream: Stream | null };
  /** The local screen share ended (`stopScreenShare()`, or the browser's own "Stop sharing"). */
  "screen-share-stopped": { stream: Stream };
  /** The room is being recorded (also right after joining a room that already is). */
  "recording-started": { id: string };
  "recording-stopped": { id: string };
  newMessage: { room: string; user: string; message: string };
  "lost-connection": { room: string };
  reconnecting: { room: string; attempt: number; delayMs: number };
  reconnected: { room: string };
  "connection-state-changed": { state: ConnectionState; previous: ConnectionState };
}

/** The Room's `emit`, handed to the modules that raise its events. */
export type RoomEmit = <K extends keyof RoomEvents>(name: K, event: RoomEvents[K]) => void;
