/**
 * The entry point, as the original `KurentoRoom(wsUri, callback)`: holds the
 * server address and options, creates the Room and the local Stream, and
 * offers the original convenience calls (close, disconnectParticipant,
 * sendMessage, sendCustomRequest, setRpcParams). Promises replace callbacks.
 */
import { resolveWebSocket, type WebSocketConstructor } from "./connection.ts";
import { RoomClientError } from "./errors.ts";
import { Room, type ReconnectOptions, type RoomOptions } from "./room.ts";
import type { Stream, StreamOptions } from "./stream.ts";

export interface KurentoRoomOptions {
  /** WebSocket implementation: the global one by default (browsers, Node ≥ 22); pass `ws` in older Node. */
  readonly WebSocket?: WebSocketConstructor;
  /**
   * Use the URL exactly as given (e.g. the original `wss://host/room`, which the
   * server relays). By default a URL ending in `/room` gets the room name
   * appended (`/room/<room>`): straight to the room, no relay.
   */
  readonly legacyRoute?: boolean;
  /** Per-request timeout (default 15 s, as the original), except for the media requests below. */
  readonly requestTimeoutMs?: number;
  /**
   * Timeout of `publishVideo` and `receiveVideoFrom` (default 40 s): longer than the server's own
   * media timeout (MEDIA_TIMEOUT_MS, default 25 s), so the client never gives up on a stream the
   * server is still negotiating, and gets the server's 301 instead.
   */
  readonly mediaRequestTimeoutMs?: number;
  /** How long opening the socket may take (default 10 s). */
  readonly connectTimeoutMs?: number;
  /** Ping interval while connected (default 10 s; 0 disables); a ping unanswered for `heartbeatTimeoutMs` (default 5 s) counts as a drop. */
  readonly heartbeatIntervalMs?: number;
  readonly heartbeatTimeoutMs?: number;
  /** Reconnection after a drop (default: on, 30 s budget, 250 ms doubling to 2 s); false: a drop ends the stay. */
  readonly reconnect?: false | Partial<ReconnectOptions>;
  /** Peer connection configuration (default: no ICE servers, max-bundle). */
  readonly rtcConfiguration?: RTCConfiguration;
  /**
   * `"relay"`: media only through TURN (the ICE servers the room hands out with TURN credentials),
   * e.g. to test a TURN setup or to hide the client's address. Default: all candidates.
   */
  readonly iceTransportPolicy?: RTCIceTransportPolicy;
  /** Restore lost media automatically (after `mediaError`, failed ICE or a reconnection). Default true. */
  readonly autoRecoverMedia?: boolean;
}

/** `mediaRequestTimeoutMs` by default: above the server's default MEDIA_TIMEOUT_MS (25 s). */
export const DEFAULT_MEDIA_REQUEST_TIMEOUT_MS = 40_000;

export const DEFAULT_RECONNECT: ReconnectOptions = { timeoutMs: 30_000, initialDelayMs: 250, maxDelayMs: 2_000 };

/**
 * The socket URL for `room`: `…/room` becomes `…/room/<room>` unless
 * `legacy`; any other URL is used as given. `http(s)` becomes `ws(s)`.
 */
export function roomSocketUrl(wsUri: string, room: string, legacy = false): string {
  const url = new URL(wsUri);
  if (url.protocol === "http:") url.protocol = "ws:";
  if (url.protocol === "https:") url.protocol = "wss:";
  if (!legacy && /\/room\/?$/.test(url.pathname)) {
    url.pathname = `${url.pathname.replace(/\/$/, "")}/${encodeURIComponent(room)}`;
  }
  return url.toString();
}

/** In a page served by the room server: `ws(s)://<this host>/room`. */
export function defaultRoomUri(): string {
  const location = (globalThis as { location?: { protocol: string; host: string } }).location;
  if (!location) throw new Error("no page location: pass the server's URL");
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/room`;
}

function noRoom(): RoomClientError {
  return new RoomClientError("no-room", "No room: create one with Room(options) first");
}

export class KurentoRoom {
  readonly wsUri: string;
  readonly options: KurentoRoomOptions;
  #room: Room | null = null;
  #rpcParams: Record<string, unknown> = {};

  constructor(wsUri: string = defaultRoomUri(), options: KurentoRoomOptions = {}) {
    this.wsUri = wsUri;
    this.options = options;
  }

  /** Creates the room (one per KurentoRoom at a time, as the original); call `connect()` on it. */
  Room(options: RoomOptions): Room {
    const o = this.options;
    const reconnect = o.reconnect === false ? null : { ...DEFAULT_RECONNECT, ...(o.reconnect ?? {}) };
    this.#room = new Room(options, {
      url: roomSocketUrl(this.wsUri, options.room, o.legacyRoute ?? false),
      connection: {
        WebSocket: resolveWebSocket(o.WebSocket),
        requestTimeoutMs: o.requestTimeoutMs ?? 15_000,
        mediaRequestTimeoutMs: o.mediaRequestTimeoutMs ?? DEFAULT_MEDIA_REQUEST_TIMEOUT_MS,
        openTimeoutMs: o.connectTimeoutMs ?? 10_000,
        heartbeatIntervalMs: o.heartbeatIntervalMs ?? 10_000,
        heartbeatTimeoutMs: o.heartbeatTimeoutMs ?? 5_000,
      },
      rtcConfiguration: {
        ...(o.rtcConfiguration ?? { iceServers: [], bundlePolicy: "max-bundle" }),
        ...(o.iceTransportPolicy ? { iceTransportPolicy: o.iceTransportPolicy } : {}),
      },
      reconnect,
      autoRecoverMedia: o.autoRecoverMedia ?? true,
      rpcParams: this.#rpcParams,
    });
    return this.#room;
  }

  /** A local stream (camera and microphone) of the local participant of `room`. */
  Stream(room: Room, options: StreamOptions = {}): Stream {
    return room.createLocalStream(options);
  }

  getRoom(): Room | null {
    return this.#room;
  }

  /** Leaves the room and releases everything; `forced` skips `leaveRoom` (the server already let go). */
  async close(forced = false): Promise<void> {
    await this.#room?.leave({ forced });
  }

  /** Unpublishes the local stream, or stops receiving a remote one. */
  disconnectParticipant(stream: Stream): Promise<void> {
    if (!this.#room) return Promise.reject(noRoom());
    return this.#room.disconnect(stream);
  }

  /** The original chat call: `room` and `user` must be this session's. */
  sendMessage(room: string, user: string, message: string): Promise<void> {
    if (!this.#room) return Promise.reject(noRoom());
    return this.#room.sendMessageAs(room, user, message);
  }

  sendCustomRequest(params: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (!this.#room) return Promise.reject(noRoom());
    return this.#room.sendCustomRequest(params);
  }

  /** Extra params merged into every request (e.g. a `token`); protocol fields take precedence. */
  setRpcParams(params: Record<string, unknown> | null | undefined): void {
    this.#rpcParams = { ...(params ?? {}) };
    this.#room?.setRpcParams(this.#rpcParams);
  }
}
