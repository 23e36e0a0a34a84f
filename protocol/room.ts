/**
 * The Room protocol (clients ⇄ room), wire-compatible with the original
 * Kurento Room Server and its `KurentoRoom.js` / Java clients.
 *
 * Parameter objects are *not* strict: the original client's `setRpcParams`
 * merges application fields (a `token`, say) into every request, so unknown
 * keys are dropped, never rejected. Missing or ill-typed fields are errors.
 */
import * as z from "zod";
import { iceServer } from "./ice-servers.ts";

export const MAX_NAME_LENGTH = 128;
export const MAX_MESSAGE_LENGTH = 64 * 1024;
export const MAX_SDP_LENGTH = 256 * 1024;
/** The stream the original protocol knows; every other stream is an addition (`joinRoom {multiStream}`). */
export const WEBCAM_STREAM = "webcam";
/** Streams one participant may publish at once (webcam, screen, …). */
export const MAX_STREAMS_PER_PARTICIPANT = 3;
/**
 * A stream's own name (`webcam`, `screen`): no `_`, so `<user>_<stream>` splits at its last `_`
 * whatever the user name, and a stream id names one stream of one user.
 */
export const streamName = z.string().regex(/^[a-z0-9-]{1,32}$/, "must be 1 to 32 of a-z, 0-9 and '-' (no '_')");

/** Which simulcast layer a subscriber receives: the best, the middle or the smallest one the publisher sends. */
export const VIDEO_QUALITIES = ["high", "medium", "low"] as const;
export const videoQuality = z.enum(VIDEO_QUALITIES);
export type VideoQuality = z.infer<typeof videoQuality>;

/** C0 and C1 control characters (Unicode category Cc). */
const CONTROL_CHARS = /\p{Cc}/u;
/**
 * Invisible format characters (Unicode category Cf): bidi controls
 * (U+202A–U+202E, U+2066–U+2069), zero-width characters (U+200B–U+200F,
 * U+2060, U+FEFF), soft hyphens… They let two names that look the same
 * differ, or make a name display as something else.
 */
const FORMAT_CHARS = /\p{Cf}/u;

/**
 * A user or room name: what people type, shown to everyone, used as a key.
 * Normalised to Unicode NFC first, so a name typed with a composed "é" and
 * one with "e" + combining accent are the same name.
 */
export const name = z
  .string()
  .normalize("NFC")
  .min(1, "must not be empty")
  .max(MAX_NAME_LENGTH, `must be at most ${MAX_NAME_LENGTH} characters`)
  .refine((s) => !CONTROL_CHARS.test(s), "must not contain control characters")
  .refine((s) => !FORMAT_CHARS.test(s), "must not contain invisible format characters (bidi controls, zero-width…)")
  .refine((s) => s.trim().length > 0, "must not be blank")
  .refine((s) => s !== "." && s !== "..", "must not be '.' or '..'");

const sdp = z.string().min(1, "must not be empty").max(MAX_SDP_LENGTH);

/** `<user>_<stream>`; split at the *last* `_` so user names may contain `_`. */
export const streamId = z
  .string()
  .normalize("NFC")
  .min(3)
  .max(MAX_NAME_LENGTH + 32)
  .refine((s) => s.lastIndexOf("_") > 0 && s.lastIndexOf("_") < s.length - 1, "must look like <user>_<stream>");

export function splitStreamId(id: string): { user: string; stream: string } {
  const cut = id.lastIndexOf("_");
  return { user: id.slice(0, cut), stream: id.slice(cut + 1) };
}

export function streamIdOf(user: string, stream: string = WEBCAM_STREAM): string {
  return `${user}_${stream}`;
}

const empty = z.object({});

export const requestParams = {
  joinRoom: z.object({
    user: name,
    room: name,
    dataChannels: z.boolean().optional(),
    /** Optional join token (checked when JOIN_TOKEN_SECRET is configured). */
    token: z.string().max(4096).optional(),
    /**
     * An addition: this client understands streams other than the webcam. Only such clients hear
     * of them; the original client never sets it, so it sees every webcam and nothing else.
     */
    multiStream: z.boolean().optional(),
  }),
  publishVideo: z.object({
    sdpOffer: sdp,
    // The original client always sends it; absent means no loopback.
    doLoopback: z.boolean().default(false),
    /** An addition: which of the caller's streams this is (`screen`…); the webcam when absent. */
    streamId: streamName.default(WEBCAM_STREAM),
  }),
  unpublishVideo: z.object({ streamId: streamName.default(WEBCAM_STREAM) }),
  /** `quality` (an addition): the simulcast layer to receive from the start (`setVideoQuality`). */
  receiveVideoFrom: z.object({ sender: streamId, sdpOffer: sdp, quality: videoQuality.optional() }),
  unsubscribeFromVideo: z.object({ sender: streamId }),
  /**
   * An addition: which simulcast layer of `sender`'s stream this participant receives (a room
   * whose media server has no simulcast accepts it and changes nothing: there is one layer).
   */
  setVideoQuality: z.object({ sender: streamId, quality: videoQuality }),
  onIceCandidate: z.object({
    endpointName: name,
    candidate: z.string().max(4096),
    sdpMid: z.string().max(64).nullable().optional(),
    sdpMLineIndex: z.number().int().min(0).max(255),
  }),
  leaveRoom: empty,
  sendMessage: z.object({
    message: z.string().max(MAX_MESSAGE_LENGTH),
    userMessage: name,
    roomMessage: name,
  }),
  // Application-defined: handlers validate their own fields.
  customRequest: z.record(z.string(), z.unknown()),
  ping: z.object({ interval: z.number().optional() }),
  /** Resume a session inside the reconnection window (kurento-jsonrpc's `connect`). */
  connect: z.object({ sessionId: z.string().min(1).max(256).optional() }),
  /** Moderators only (a join token with `role: "moderator"`): removes `user` from the room. */
  evictParticipant: z.object({ user: name }),
  /** Moderators only: stops `user`'s stream (`streamId`, when given, must be that user's stream). */
  forceUnpublish: z.object({ user: name, streamId: streamId.optional() }),
  /** Starts recording the room (ALLOW_RECORDING_FROM_CLIENTS; moderators only when join tokens are in use). */
  startRecording: z.object({ name: z.string().min(1).max(200).optional() }),
  /** Stops the room's recording (same permission as startRecording). */
  stopRecording: empty,
} as const;

export type RoomMethod = keyof typeof requestParams;
export type RequestParams<M extends RoomMethod> = z.output<(typeof requestParams)[M]>;

export function isRoomMethod(method: string): method is RoomMethod {
  return Object.hasOwn(requestParams, method);
}

/**
 * The client library's heartbeat: one exact frame that the room object answers
 * with one exact frame *without waking up* (Durable Object WebSocket
 * auto-response), so idle rooms stay hibernated. Ordinary `ping` requests
 * (the original client's) are answered by the room as usual.
 */
export const HEARTBEAT_REQUEST = '{"jsonrpc":"2.0","method":"ping","id":"heartbeat"}';
export const HEARTBEAT_RESPONSE = '{"id":"heartbeat","result":{"value":"pong"},"jsonrpc":"2.0"}';

// ── Results ──────────────────────────────────────────────────────────────────
export const streamDescriptor = z.object({ id: z.string() });
export const peerDescriptor = z.object({
  id: z.string(),
  streams: z.array(streamDescriptor).optional(),
});
export type PeerDescriptor = z.infer<typeof peerDescriptor>;

const withSession = { sessionId: z.string() };
export const results = {
  /** `role`: present (an addition) when a join token made this participant a moderator. */
  joinRoom: z.object({
    value: z.array(peerDescriptor),
    /** An addition: whether publishers may send simulcast (every attached media server forwards it by layer). */
    simulcast: z.boolean().optional(),
    role: z.enum(["participant", "moderator"]).optional(),
    /** An addition: STUN/TURN servers (with short-lived TURN credentials) for this user's peer connections. */
    iceServers: z.array(iceServer).optional(),
    ...withSession,
  }),
  publishVideo: z.object({ sdpAnswer: z.string(), ...withSession }),
  unpublishVideo: z.object(withSession),
  receiveVideoFrom: z.object({ sdpAnswer: z.string(), ...withSession }),
  unsubscribeFromVideo: z.object(withSession),
  setVideoQuality: z.object(withSession),
  onIceCandidate: z.object(withSession),
  leaveRoom: z.object(withSession),
  sendMessage: z.object(withSession),
  customRequest: z.looseObject(withSession),
  ping: z.object({ value: z.literal("pong"), ...withSession }),
  /** After resuming a seat: the room as it is now (what the client missed while away). */
  connect: z.object({
    value: z.array(peerDescriptor).optional(),
    iceServers: z.array(iceServer).optional(),
    ...withSession,
  }),
  evictParticipant: z.object(withSession),
  forceUnpublish: z.object(withSession),
  startRecording: z.object({ id: z.string(), ...withSession }),
  stopRecording: z.object({ id: z.string(), ...withSession }),
} as const satisfies Record<RoomMethod, z.ZodType>;

export type RoomResult<M extends RoomMethod> = z.infer<(typeof results)[M]>;

// ── Notifications (server → client) ─────────────────────────────────────────
export const iceCandidateParams = z.object({
  endpointName: z.string(),
  candidate: z.string(),
  sdpMid: z.string().nullable().optional(),
  sdpMLineIndex: z.number().int(),
});

export const notifications = {
  participantJoined: z.object({ id: z.string() }),
  participantPublished: z.object({ id: z.string(), streams: z.array(streamDescriptor) }),
  /**
   * `streamId` (`<user>_<stream>`, an addition): only to clients that joined with `multiStream`,
   * for any stream; the others hear only of the webcam, without it, and drop all of `name`'s media.
   */
  participantUnpublished: z.object({ name: z.string(), streamId: z.string().optional() }),
  participantLeft: z.object({ name: z.string() }),
  /**
   * To the evicted user, before its socket is closed. `by` (an addition: old clients ignore it):
   * the moderator's name, or absent when the administrator evicted (or closed the room).
   */
  participantEvicted: z.object({ by: z.string().optional() }),
  /** To a user whose stream a moderator (`by`) or the administrator (no `by`) stopped. An addition. */
  streamForceUnpublished: z.object({ streamId: z.string(), by: z.string().optional() }),
  sendMessage: z.object({ room: z.string(), user: z.string(), message: z.string() }),
  iceCandidate: iceCandidateParams,
  roomClosed: z.object({ room: z.string() }),
  /**
   * `streams`: the stream ids (`<user>_webcam`) whose media is gone for this
   * client: its own published stream and/or streams it received. Absent (an
   * old server, or a room-wide failure): all of the client's media is gone.
   * An addition to the original protocol; old clients ignore it.
   */
  mediaError: z.object({ error: z.string(), streams: z.array(z.string()).optional() }),
  /** The room is being recorded (also sent right after joinRoom/connect to a room that is). An addition. */
  recordingStarted: z.object({ id: z.string() }),
  /** The room's recording stopped. An addition. */
  recordingStopped: z.object({ id: z.string() }),
} as const;

export type NotificationMethod = keyof typeof notifications;
export type NotificationParams<M extends NotificationMethod> = z.infer<(typeof notifications)[M]>;
export type Notification = {
  [M in NotificationMethod]: { method: M; params: NotificationParams<M> };
}[NotificationMethod];
