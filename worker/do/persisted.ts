/**
 * Everything the Durable Objects keep across hibernation and restarts, with
 * the zod schema each is read back through: the room roster, pending media
 * requests, running recording and ledger outbox (rows), the pool's bridge
 * rows, and the sockets' attachments.
 *
 * What is written carries a version, `v: 1`. Rows and attachments written
 * before versions existed have no `v`: they are read as version 0 and
 * migrated (the fields were the same, only `v` was missing), so an object
 * deployed over old storage keeps its rooms and sockets.
 *
 * Participant, pending and recording rows are at `v: 2` since participants
 * publish several streams: versions 0 and 1 knew only the webcam (one
 * `publish` state, subscriptions and recording files keyed by user name)
 * and are read as that user's webcam.
 */
import * as z from "zod";
import { filterName, mediaCommandParams, type FilterName, type MediaCommand } from "../../protocol/bridge.ts";
import { streamIdOf, WEBCAM_STREAM } from "../../protocol/room.ts";
import type { ActiveRecording, Json, LedgerOp, Participant, PendingMedia, PublishedStream } from "../core/types.ts";

const json = z.json() as z.ZodType<Json>;

const subscriptionState = z.enum(["pending", "live"]);
const participantFields = {
  session: z.string(),
  user: z.string(),
  multiStream: z.boolean(),
  streams: z.record(z.string(), z.object({ state: subscriptionState, loopback: z.boolean() })),
  dataChannels: z.boolean(),
  subscriptions: z.record(z.string(), subscriptionState),
  attributes: z.record(z.string(), json),
  disconnectedAt: z.number().nullable(),
  /** Rows written before roles existed have none: `participant`. */
  role: z.enum(["participant", "moderator"]).default("participant"),
};

/** A media command as the core emits it (`{op, ...params}`), for the `undo` of a pending custom request. */
const mediaCommand = z.union(
  Object.entries(mediaCommandParams).map(([op, params]) => params.extend({ op: z.literal(op) })) as unknown as [
    z.ZodType<MediaCommand>,
    ...z.ZodType<MediaCommand>[],
  ],
) as z.ZodType<MediaCommand>;

const pendingFields = {
  session: z.string(),
  id: z.union([z.string(), z.number()]).nullable(),
  op: z.enum(["publish", "subscribe", "custom"]),
  stream: z.string().optional(),
  sender: z.string().optional(),
  data: json.optional(),
  /**
   * Rows written before deadlines existed have none: 0, so the next alarm fails them with 301
   * (their command went out under an id no instance of the room knows any more).
   */
  deadline: z.number().default(0),
  undo: mediaCommand.optional(),
};

const recordingFields = {
  id: z.string(),
  startedAt: z.number(),
  token: z.string(),
  seq: z.number().int().min(0),
  files: z.record(z.string(), z.string()),
};

const ledgerFile = z.object({ name: z.string(), user: z.string(), stream: z.string(), startOffsetMs: z.number() });
/** An op of the room's ledger outbox (worker/do/recording-outbox.ts). */
const ledgerOp = z.discriminatedUnion("op", [
  z.object({
    op: z.literal("start"),
    id: z.string(),
    room: z.string(),
    name: z.string().optional(),
    startedAt: z.number(),
    files: z.array(ledgerFile),
  }),
  z.object({ op: z.literal("addFile"), id: z.string(), file: ledgerFile }),
  z.object({ op: z.literal("endFile"), id: z.string(), name: z.string(), at: z.number() }),
  z.object({ op: z.literal("failFile"), id: z.string(), name: z.string(), reason: z.string() }),
  z.object({ op: z.literal("stop"), id: z.string(), at: z.number() }),
]);

/** A room socket: a client's (its session; `superseded` once replaced or closed by the room) or the bridge's. */
const socketFields = z.discriminatedUnion("role", [
  z.object({
    role: z.literal("client"),
    session: z.string(),
    superseded: z.boolean().optional(),
    /** When the socket was accepted (ms): one that has not joined by `openedAt + IDLE_SOCKET_SECONDS` is closed. */
    openedAt: z.number().optional(),
  }),
  z.object({ role: z.literal("bridge"), bridgeId: z.string() }),
]);

/** A bridge's control socket on the pool (`superseded` once a newer connection of that bridge took over). */
const controlFields = z.object({ bridgeId: z.string(), superseded: z.boolean().optional() });

export type SocketAttachment = z.infer<typeof socketFields>;
export type ControlAttachment = z.infer<typeof controlFields>;

const VERSION = { v: z.literal(1) };

/** Version 1 (with `v`) or version 0 (the same fields, no `v`); `v` is dropped from what is returned. */
function versioned<T>(schema: z.ZodType<T>): z.ZodType<T> {
  return z.union([
    z.intersection(z.object(VERSION), schema).transform(({ v: _v, ...rest }) => rest as T),
    schema,
  ]) as unknown as z.ZodType<T>;
}

/** Keys that were user names (versions 0 and 1) as the webcam's stream ids. */
const webcamKeys = <T>(record: Record<string, T>): Record<string, T> =>
  Object.fromEntries(Object.entries(record).map(([user, value]) => [streamIdOf(user), value]));

const participantRowV1 = versioned(
  z.object({
    ...participantFields,
    multiStream: z.undefined().optional(),
    streams: z.undefined().optional(),
    publish: z.enum(["none", "pending", "live"]),
    loopback: z.boolean(),
  }),
).transform(({ publish, loopback, multiStream: _m, streams: _s, ...rest }): Participant => {
  const streams: Record<string, PublishedStream> =
    publish === "none" ? {} : { [WEBCAM_STREAM]: { state: publish, loopback } };
  return { ...rest, multiStream: false, streams, subscriptions: webcamKeys(rest.subscriptions) };
});
const pendingRowV1 = versioned(z.object(pendingFields)).transform(
  ({ sender, ...rest }) =>
    (rest.op === "subscribe" && sender !== undefined ? { ...rest, sender: streamIdOf(sender) } : rest) as PendingMedia,
);
const recordingRowV1 = versioned(z.object(recordingFields)).transform(
  (row): ActiveRecording => ({ ...row, files: webcamKeys(row.files) }),
);

const V2 = { v: z.literal(2) };
/** Version 2, or an older row migrated. */
function upgraded<T>(v2: z.ZodType<T>, older: z.ZodType<T>): z.ZodType<T> {
  return z.union([
    z.intersection(z.object(V2), v2).transform(({ v: _v, ...rest }) => rest as T),
    older,
  ]) as unknown as z.ZodType<T>;
}

const participantRow = upgraded<Participant>(z.object(participantFields), participantRowV1);
const pendingRow = upgraded<PendingMedia>(z.object(pendingFields) as z.ZodType<PendingMedia>, pendingRowV1);
const recordingRow = upgraded<ActiveRecording>(z.object(recordingFields), recordingRowV1);
const ledgerOpRow = versioned<LedgerOp>(ledgerOp);
const socketAttachment = versioned<SocketAttachment>(socketFields);
const controlAttachment = versioned<ControlAttachment>(controlFields);
/**
 * The `filters` column of the pool's bridge rows, the bridge's capabilities: `{v: 1, filters,
 * simulcast?}` (`simulcast` added within version 1: absent reads as false); version 0 was the bare array.
 */
const bridgeFilters = z.union([
  z.object({ ...VERSION, filters: z.array(filterName) }).transform((row) => row.filters),
  z.array(filterName),
]);
const bridgeSimulcast = z.union([
  z.object({ ...VERSION, simulcast: z.boolean().optional() }).transform((row) => row.simulcast === true),
  z.array(filterName).transform(() => false),
]);

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function orNull<T>(schema: z.ZodType<T>, raw: unknown, what: string): T | null {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  console.error(JSON.stringify({ msg: `unreadable ${what}, ignored`, error: parsed.error.message }));
  return null;
}

export const readParticipantRow = (text: string): Participant | null =>
  orNull(participantRow, parseJson(text), "participant row");
export const readPendingRow = (text: string): PendingMedia | null => orNull(pendingRow, parseJson(text), "pending row");
export const readRecordingRow = (text: string): ActiveRecording | null =>
  orNull(recordingRow, parseJson(text), "recording row");
export const readLedgerOpRow = (text: string): LedgerOp | null => orNull(ledgerOpRow, parseJson(text), "ledger op");
export const writeRow = (value: Participant | PendingMedia | ActiveRecording): string =>
  JSON.stringify({ v: 2, ...value });
export const writeLedgerOpRow = (value: LedgerOp): string => JSON.stringify({ v: 1, ...value });

/** A socket's attachment; null when it has none (or one no version can read). */
/**
 * Every client frame needs its socket's attachment: parse it once per socket
 * and instance, not per frame (a chat storm is the hot path). All writes go
 * through writeSocketAttachment, which keeps this copy current; a woken
 * object has new WebSocket objects, so it starts empty.
 */
const parsedAttachments = new WeakMap<WebSocket, SocketAttachment | null>();

export function readSocketAttachment(ws: WebSocket): SocketAttachment | null {
  const cached = parsedAttachments.get(ws);
  if (cached !== undefined) return cached;
  const raw: unknown = ws.deserializeAttachment();
  const parsed = raw === null || raw === undefined ? null : orNull(socketAttachment, raw, "socket attachment");
  parsedAttachments.set(ws, parsed);
  return parsed;
}

export function writeSocketAttachment(ws: WebSocket, attachment: SocketAttachment): void {
  ws.serializeAttachment({ v: 1, ...attachment });
  parsedAttachments.set(ws, attachment);
}

export function readControlAttachment(ws: WebSocket): ControlAttachment | null {
  const raw: unknown = ws.deserializeAttachment();
  return raw === null || raw === undefined ? null : orNull(controlAttachment, raw, "control attachment");
}

export function writeControlAttachment(ws: WebSocket, attachment: ControlAttachment): void {
  ws.serializeAttachment({ v: 1, ...attachment });
}

export const readBridgeFilters = (text: string): FilterName[] =>
  orNull(bridgeFilters, parseJson(text), "bridge filters") ?? [];
export const readBridgeSimulcast = (text: string): boolean =>
  orNull(bridgeSimulcast, parseJson(text), "bridge capabilities") ?? false;
export const writeBridgeFilters = (filters: readonly FilterName[], simulcast = false): string =>
  JSON.stringify(simulcast ? { v: 1, filters, simulcast } : { v: 1, filters });
