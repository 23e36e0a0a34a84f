/**
 * Helpers for the client library's Node tests: KurentoRoom instances on the
 * `ws` package against a real worker, an event recorder, bounded waits.
 */
import WebSocket from "ws";
import { KurentoRoom, type KurentoRoomOptions } from "../../web/src/client/kurento-room.ts";
import type { Room, RoomEvents } from "../../web/src/client/room.ts";

export type EventName = keyof RoomEvents;

export interface Recorded {
  readonly name: EventName;
  readonly event: unknown;
}

/** Every room made by a test file, left (forced) when the file ends. */
export const rooms: Room[] = [];

export function kurentoFor(baseUrl: string, options: KurentoRoomOptions = {}): KurentoRoom {
  return new KurentoRoom(`${baseUrl.replace(/^http/, "ws")}/room`, { WebSocket, heartbeatIntervalMs: 0, ...options });
}

export function makeRoom(baseUrl: string, room: string, user: string, options: KurentoRoomOptions = {}): Room {
  const made = kurentoFor(baseUrl, options).Room({ room, user });
  rooms.push(made);
  return made;
}

/** Joins and resolves once `room-connected` fired. */
export async function joined(
  baseUrl: string,
  room: string,
  user: string,
  options: KurentoRoomOptions = {},
): Promise<Room> {
  const made = makeRoom(baseUrl, room, user, options);
  await made.connect();
  return made;
}

const ALL_EVENTS: EventName[] = [
  "room-connected",
  "error-room",
  "room-closed",
  "participant-joined",
  "participant-left",
  "participant-evicted",
  "participant-published",
  "participant-unpublished",
  "stream-published",
  "stream-unpublished",
  "stream-subscribed",
  "stream-unsubscribed",
  "stream-added",
  "stream-removed",
  "stream-recovered",
  "error-media",
  "newMessage",
  "lost-connection",
  "reconnecting",
  "reconnected",
  "connection-state-changed",
  "stream-speaking",
  "stream-stopped-speaking",
  "active-speaker-changed",
  "screen-share-stopped",
  "recording-started",
  "recording-stopped",
];

/** Records every event a room emits, in order. */
export function record(room: Room): Recorded[] {
  const log: Recorded[] = [];
  for (const name of ALL_EVENTS) room.on(name, (event: unknown) => log.push({ name, event }));
  return log;
}

export function names(log: readonly Recorded[], only?: readonly EventName[]): EventName[] {
  return log.map((r) => r.name).filter((n) => !only || only.includes(n));
}

/** Polls until `probe` holds; fails after `timeoutMs`. */
export async function until(probe: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function leaveAll(): Promise<void> {
  await Promise.all(rooms.splice(0).map((r) => r.leave({ forced: true })));
}

let counter = 0;
/** A room name unique within this process. */
export function uniqueRoom(prefix = "room"): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}
