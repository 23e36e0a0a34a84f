/**
 * The server's notifications turned into the Room's events: each one is
 * checked against the protocol's schema, then handled by the table below.
 * `reconcileRoster` replays the roster changes missed while disconnected
 * through the same handlers.
 */
import { describeIssues } from "../../../protocol/jsonrpc.ts";
import {
  notifications,
  type NotificationMethod,
  type NotificationParams,
  type PeerDescriptor,
} from "../../../protocol/room.ts";
import type { RoomEmit } from "./room-types.ts";
import type { Roster } from "./roster.ts";
import type { Stream } from "./stream.ts";

export type NotificationHandlers = { [M in NotificationMethod]: (params: NotificationParams<M>) => void };

/** What the handlers need from their Room. */
export interface NotificationContext {
  readonly user: string;
  readonly roster: Roster;
  readonly emit: RoomEmit;
  /** A remote stream was announced (after `stream-added`): the Room subscribes to it when it should. */
  streamAdded(stream: Stream): void;
  /** `participantEvicted` (`by`: the moderator, absent for the server): the `roomClosed` that may follow ends the stay as an eviction. */
  evicted(by: string | undefined): void;
  /** `roomClosed`: ends the stay. */
  roomClosed(room: string): void;
  /** `mediaError` (after `error-media` was emitted). */
  mediaError(streams: readonly string[] | undefined): void;
  /** `streamForceUnpublished`: a moderator or the administrator stopped this participant's stream. */
  forceUnpublished(streamId: string, by: string | undefined): void;
  /** `recordingStarted` (an id) or `recordingStopped` (null, and the id that stopped). */
  recording(id: string | null, stopped?: string): void;
}

const NOTIFICATION_METHODS = Object.keys(notifications) as NotificationMethod[];

function isNotificationMethod(method: string): method is NotificationMethod {
  return (NOTIFICATION_METHODS as string[]).includes(method);
}

export function notificationHandlers(ctx: NotificationContext): NotificationHandlers {
  const { roster, emit } = ctx;
  return {
    participantJoined: ({ id }) => {
      roster.ensure(id);
    },
    participantPublished: ({ id, streams }) => {
      const participant = roster.ensure(id);
      if (!participant) return;
      const added = roster.publish(
        participant,
        streams.map((s) => s.id),
      );
      emit("participant-published", { participant });
      for (const stream of added) {
        emit("stream-added", { stream });
        ctx.streamAdded(stream);
      }
    },
    participantUnpublished: (params) => {
      const participant = roster.getRemote(params.name);
      if (!participant) return;
      const streamId = unpublishedStream(params);
      for (const stream of participant.getStreams()) {
        if (streamId === undefined || stream.getID() === streamId) roster.removeStream(participant, stream);
      }
      // The participant-level event once it publishes nothing any more (the original's meaning).
      if (!participant.isPublishing()) emit("participant-unpublished", { participant });
    },
    participantLeft: ({ name }) => {
      roster.leave(name);
    },
    streamForceUnpublished: ({ streamId, by }) => {
      ctx.forceUnpublished(streamId, by);
    },
    participantEvicted: ({ by }) => {
      ctx.evicted(by);
      emit("participant-evicted", { localParticipant: roster.local });
    },
    roomClosed: ({ room }) => {
      ctx.roomClosed(room);
    },
    sendMessage: ({ room, user, message }) => {
      emit("newMessage", { room, user, message });
    },
    iceCandidate: ({ endpointName, candidate, sdpMid, sdpMLineIndex }) => {
      const init: RTCIceCandidateInit = { candidate, sdpMid: sdpMid ?? null, sdpMLineIndex };
      // The webcam's endpoint is named after its user, any other stream's `<user>_<stream>`.
      const candidates = [...roster.localStreams().filter((s) => s.status !== "idle"), ...roster.remoteStreams()];
      for (const stream of candidates) if (stream.endpointName === endpointName) stream.addRemoteCandidate(init);
    },
    mediaError: ({ error, streams }) => {
      emit("error-media", streams ? { error, streams } : { error });
      ctx.mediaError(streams);
    },
    recordingStarted: ({ id }) => {
      ctx.recording(id);
    },
    recordingStopped: ({ id }) => {
      ctx.recording(null, id);
    },
  };
}

/**
 * The stream `participantUnpublished` names (undefined: all of them). A
 * server that takes several streams sends `streamId`, the stream's id
 * (`screen`) or its global id (`alice_screen`); both are understood.
 */
function unpublishedStream(params: NotificationParams<"participantUnpublished">): string | undefined {
  const raw: unknown = "streamId" in params ? params.streamId : undefined;
  if (typeof raw !== "string" || raw === "") return undefined;
  const prefix = `${params.name}_`;
  return raw.startsWith(prefix) ? raw.slice(prefix.length) : raw;
}

/**
 * Checks a notification and hands it to its handler; unknown or malformed
 * ones are ignored with a warning, and none is handled unless `connected`.
 */
export function dispatchNotification(
  handlers: NotificationHandlers,
  method: string,
  params: unknown,
  connected: () => boolean,
): void {
  if (!isNotificationMethod(method)) {
    console.warn(`kurento-room: unknown notification '${method}' ignored`);
    return;
  }
  const parsed = notifications[method].safeParse(params ?? {});
  if (!parsed.success) {
    console.warn(`kurento-room: malformed '${method}' notification ignored: ${describeIssues(parsed.error)}`);
    return;
  }
  if (!connected()) return;
  (handlers[method] as (p: unknown) => void)(parsed.data);
}

/** A roster from the server (when `connect` returns one): applies the joins and leaves missed while away. */
export function reconcileRoster(
  peers: readonly PeerDescriptor[],
  user: string,
  roster: Roster,
  handlers: NotificationHandlers,
): void {
  const present = new Set(peers.map((p) => p.id));
  for (const participant of roster.remoteParticipants()) {
    if (!present.has(participant.getID())) handlers.participantLeft({ name: participant.getID() });
  }
  for (const peer of peers) {
    if (peer.id === user) continue;
    const known = roster.getRemote(peer.id);
    const streams = peer.streams ?? [];
    const publishes = streams.length > 0;
    if (!known) {
      if (publishes) handlers.participantPublished({ id: peer.id, streams });
      else roster.ensure(peer.id);
    } else if (
      publishes &&
      !sameIds(
        known.getStreams().map((x) => x.getID()),
        streams.map((x) => x.id),
      )
    ) {
      handlers.participantPublished({ id: peer.id, streams });
    } else if (!publishes && known.isPublishing()) {
      handlers.participantUnpublished({ name: peer.id });
    }
  }
}

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id) => b.includes(id));
}
