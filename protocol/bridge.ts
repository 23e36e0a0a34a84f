/**
 * The bridge protocol (Room DO / BridgePool ⇄ media bridge), JSON-RPC 2.0 over
 * WebSocket in both directions. Commands are coarse, idempotent and
 * room-scoped: the room never handles Kurento object ids, so a bridge restart
 * or a move to another media server changes nothing on the room side.
 *
 * The room core emits exactly these commands through its `MediaPort`.
 */
import * as z from "zod";
import { name, iceCandidateParams, streamName, videoQuality } from "./room.ts";
import { recordingFileName, recordingId } from "./recordings.ts";

const sdp = z
  .string()
  .min(1)
  .max(256 * 1024);

export const FILTERS = ["hat"] as const;
export const filterName = z.enum(FILTERS);
export type FilterName = z.infer<typeof filterName>;

// ── Room DO → bridge (on /bridge/rooms/:room) ───────────────────────────────
/**
 * Which of a user's streams a command is about (`screen`…); absent: the webcam, so a room that
 * never names one speaks the protocol as it was. A user holds one publisher endpoint per stream.
 */
const stream = streamName.optional();

export const mediaCommandParams = {
  publish: z.object({ user: name, stream, sdpOffer: sdp, loopback: z.boolean(), dataChannels: z.boolean() }),
  /** `sender`'s stream `stream` to `user`. */
  subscribe: z.object({ user: name, sender: name, stream, sdpOffer: sdp, quality: videoQuality.optional() }),
  /** Which simulcast layer `user` receives of `sender`'s `stream`; a no-op on a media server without simulcast. */
  setVideoQuality: z.object({ user: name, sender: name, stream, quality: videoQuality }),
  addIceCandidate: z.object({
    user: name,
    /** The user's own name: its publisher endpoint; a sender's name: the subscription to it. */
    endpoint: name,
    /** Which stream of `endpoint` (its own, or the sender's). */
    stream,
    candidate: z.string().max(4096),
    sdpMid: z.string().max(64).nullable().optional(),
    sdpMLineIndex: z.number().int().min(0).max(255),
  }),
  unpublish: z.object({ user: name, stream }),
  unsubscribe: z.object({ user: name, sender: name, stream }),
  /** Every stream of the user, published and received. */
  releaseUser: z.object({ user: name }),
  /** Everyone left or the room was closed: release the pipeline. */
  releaseRoom: z.object({ reason: z.string().max(256).optional() }),
  applyFilter: z.object({ user: name, filter: filterName }),
  removeFilter: z.object({ user: name, filter: filterName }),
  /** After a (re)attach: the users the room has, so the bridge drops what it holds for anyone else. */
  sync: z.object({ users: z.array(name) }),
  /**
   * Record `user`'s published stream into `file` until `stopRecording` or the
   * stream ends (unpublish, leave, media lost); then upload it to the worker
   * with `token` (protocol/recordings.ts). `startedAt` (epoch ms) is the
   * recording's start, the origin of the file's `startOffsetMs`.
   */
  record: z.object({
    recording: recordingId,
    user: name,
    stream: z.string().min(1).max(32),
    file: recordingFileName,
    token: z.string().min(1).max(4096),
    startedAt: z.number().int().min(0),
  }),
  /** End every file of `recording` in this room and upload them. Idempotent. */
  stopRecording: z.object({ recording: recordingId }),
} as const;

export type MediaOp = keyof typeof mediaCommandParams;
export type MediaCommand = {
  [K in MediaOp]: { op: K } & z.infer<(typeof mediaCommandParams)[K]>;
}[MediaOp];

export const mediaCommandResults = {
  publish: z.object({ sdpAnswer: z.string() }),
  subscribe: z.object({ sdpAnswer: z.string() }),
  addIceCandidate: z.object({}),
  unpublish: z.object({}),
  unsubscribe: z.object({}),
  setVideoQuality: z.object({}),
  releaseUser: z.object({}),
  releaseRoom: z.object({}),
  applyFilter: z.object({}),
  removeFilter: z.object({}),
  /** Users the bridge still holds media for; the room resets everyone else's media. */
  sync: z.object({ held: z.array(name) }),
  record: z.object({}),
  stopRecording: z.object({}),
} as const satisfies Record<MediaOp, z.ZodType>;

export type MediaResult<K extends MediaOp> = z.infer<(typeof mediaCommandResults)[K]>;

// ── bridge → Room DO (notifications) ────────────────────────────────────────
export const mediaEventParams = {
  /** `endpoint` (and `stream`, absent for the webcam) as in addIceCandidate. */
  iceCandidate: iceCandidateParams.omit({ endpointName: true }).extend({ user: name, endpoint: name, stream }),
  /** `user` absent: a pipeline-wide error that concerns everyone in the room. */
  /** `streams`: the stream ids (`<user>_webcam`) that failed for `user`; absent: all of that user's media. */
  mediaError: z.object({
    user: name.optional(),
    error: z.string().max(4096),
    streams: z.array(name).max(1024).optional(),
  }),
  mediaState: z.object({ user: name, endpoint: name, stream, state: z.string().max(64) }),
  /** The media server lost these users' media (all of the room's when absent), e.g. it restarted. */
  mediaLost: z.object({ users: z.array(name).optional(), error: z.string().max(4096) }),
} as const;

export type MediaEventMethod = keyof typeof mediaEventParams;
export type MediaEvent = {
  [K in MediaEventMethod]: { event: K } & z.infer<(typeof mediaEventParams)[K]>;
}[MediaEventMethod];

// ── bridge ⇄ BridgePool (on /bridge/control) ────────────────────────────────
export const kmsDescriptor = z.object({ uri: z.string().max(2048), limit: z.number().int().positive() });

export const controlParams = {
  /** bridge → pool, first frame after connecting. */
  register: z.object({
    bridgeId: z.string().min(1).max(128),
    kms: z.array(kmsDescriptor).min(1).max(64),
    /** Rooms this bridge already holds (after a reconnect), so the pool keeps them assigned. */
    rooms: z.array(name).max(100_000),
    filters: z.array(filterName),
    /** Whether this bridge can record (it has a RECORDINGS_DIR and its media servers a RecorderEndpoint). */
    recording: z.boolean().optional(),
    /** Whether every media server of this bridge forwards simulcast by layer (the embedded one; KMS does not). */
    simulcast: z.boolean().optional(),
  }),
  /** bridge → pool, periodically and on change. */
  load: z.object({ pipelines: z.number().int().min(0) }),
  /** pool → bridge: open `/bridge/rooms/:room`; `user` is who needs media first (KMS selection). */
  attach: z.object({ room: name, user: name }),
} as const;

export const controlResults = {
  register: z.object({ accepted: z.literal(true) }),
  attach: z.object({}),
} as const;
