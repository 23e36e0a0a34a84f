/**
 * Helpers for workers tests that play a media bridge at the protocol seam
 * (protocol/bridge.ts), plus bounded, event-following waits. Not a test file.
 *
 * Nothing here depends on the short MEDIA_TIMEOUT_MS / RECONNECT_WINDOW_SECONDS
 * of the workers project: the values are read from the bindings, and every
 * wait is bounded generously above them.
 */
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { expect } from "vitest";
import { CONTROL_AUDIENCE, roomAudience, signBridgeToken } from "../../protocol/tokens/bridge-token.ts";
import type { RoomObject } from "../../worker/do/room-object.ts";
import { Client, type Frame } from "./ws-client.ts";

/** How long any wait may take beyond the configured timers: a busy 2-core machine is slow, never this slow. */
export const SLACK_MS = 20_000;

/** The room's media timeout as configured for this run (README: MEDIA_TIMEOUT_MS, default 25 s). */
export function mediaTimeoutMs(): number {
  return Number(env.MEDIA_TIMEOUT_MS ?? 25_000);
}

/** The reconnection window as configured for this run, in ms (README: RECONNECT_WINDOW_SECONDS, default 10). */
export function reconnectWindowMs(): number {
  return Number(env.RECONNECT_WINDOW_SECONDS ?? 10) * 1000;
}

export function bridgeSecret(): string {
  const secret = env.BRIDGE_SECRET;
  if (!secret) throw new Error("the workers project must set BRIDGE_SECRET");
  return secret;
}

export function bridgeToken(audience: string, bridgeId: string): Promise<string> {
  return signBridgeToken(bridgeSecret(), { bridgeId, audience });
}

/** Every client a test opens, so `closeAll` can end them (and the pool forgets the bridges). */
export const opened: Client[] = [];

export async function openClient(path: string, headers: Record<string, string> = {}): Promise<Client> {
  const client = await Client.open(path, headers);
  opened.push(client);
  return client;
}

/** Opens `/room/<room>` and joins as `user`; returns the client and its session id. */
export async function join(room: string, user: string): Promise<{ client: Client; session: string }> {
  const client = await openClient(`/room/${room}`);
  const joined = await client.request("joinRoom", { user, room });
  expect(joined.error).toBeUndefined();
  const session = joined.result?.sessionId;
  if (typeof session !== "string") throw new Error(`no session id in ${JSON.stringify(joined)}`);
  return { client, session };
}

export interface BridgeRegistration {
  limit?: number;
  /** Rooms the bridge says it already holds: each counts as one pipeline. */
  rooms?: string[];
  filters?: string[];
}

/** (Re-)registers on an open control link; a request, so the pool has applied it when this returns. */
export async function register(control: Client, bridgeId: string, reg: BridgeRegistration = {}): Promise<void> {
  const answer = await control.request("register", {
    bridgeId,
    kms: [{ uri: "ws://127.0.0.1:8888/kurento", limit: reg.limit ?? 10 }],
    rooms: reg.rooms ?? [],
    filters: reg.filters ?? [],
  });
  expect(answer.result).toEqual({ accepted: true });
}

/** A fake bridge's control link, registered. */
export async function connectBridge(bridgeId: string, reg: BridgeRegistration = {}): Promise<Client> {
  const control = await openClient("/bridge/control", {
    Authorization: `Bearer ${await bridgeToken(CONTROL_AUDIENCE, bridgeId)}`,
  });
  await register(control, bridgeId, reg);
  return control;
}

/** Opens `/bridge/rooms/<room>` as `bridgeId` (a fresh token, as the real bridge signs one per attempt). */
export async function openRoomLink(room: string, bridgeId: string): Promise<Client> {
  return openClient(`/bridge/rooms/${room}`, {
    Authorization: `Bearer ${await bridgeToken(roomAudience(room), bridgeId)}`,
  });
}

/** Does what the real bridge does on `attach`: opens the room link, answers the attach, answers `sync`. */
export async function answerAttach(
  control: Client,
  attach: Frame & { id: number | string },
  bridgeId: string,
): Promise<Client> {
  const room = String(attach.params?.room);
  const link = await openRoomLink(room, bridgeId);
  control.reply(attach.id, {});
  link.reply((await link.incoming("sync")).id, { held: [] });
  return link;
}

/** Polls `probe` until it returns a value (not undefined); bounded, never a fixed sleep. */
export async function until<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  what: string,
  timeoutMs = SLACK_MS,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The first unanswered `attach` for `room` on any of the control links, and which link got it. */
export async function nextAttach(
  controls: Client[],
  room: string,
): Promise<{ index: number; frame: Frame & { id: number | string } }> {
  return until(() => {
    for (const [index, control] of controls.entries()) {
      const frame = control.frames.find(
        (f) => f.method === "attach" && f.params?.room === room && f.id != null && !control.taken.has(f),
      );
      if (frame) {
        control.taken.add(frame);
        return { index, frame: frame as Frame & { id: number | string } };
      }
    }
    return undefined;
  }, `an attach for room ${room}`);
}

/** The bridges the pool counts as connected now (GET /health). */
export async function healthBridges(): Promise<number> {
  const response = await SELF.fetch("https://example.com/health");
  expect(response.status).toBe(200);
  return ((await response.json()) as { bridges: number }).bridges;
}

export function waitForBridgeCount(count: number): Promise<number> {
  return until(
    async () => ((await healthBridges()) === count ? count : undefined),
    `/health to count ${count} bridges`,
  );
}

/** Closes every client the test opened and waits until the pool counts no bridge. */
export async function closeAll(): Promise<void> {
  for (const client of opened.splice(0)) {
    if (client.closeCode === null) {
      try {
        client.ws.close(1000, "test over");
      } catch {
        // Already closing.
      }
    }
  }
  await waitForBridgeCount(0);
}

export function roomStub(room: string) {
  return env.ROOM.get(env.ROOM.idFromName(room));
}

export interface StoredParticipant {
  user: string;
  session: string;
  /** Stream name → its publication (`{}`: publishing nothing). */
  streams: Record<string, { state: string; loopback: boolean }>;
  subscriptions: Record<string, string>;
  disconnectedAt: number | null;
}

/** The roster as the room object stored it (its SQLite rows). */
export function storedRoster(room: string): Promise<StoredParticipant[]> {
  return runInDurableObject(roomStub(room), (_instance: RoomObject, state) =>
    state.storage.sql
      .exec<{ data: string }>("SELECT data FROM participants")
      .toArray()
      .map((r) => JSON.parse(r.data) as StoredParticipant),
  );
}

/** The media requests the room object still waits for (its `pending` rows). */
export function storedPending(room: string): Promise<Array<{ ref: string; data: string }>> {
  return runInDurableObject(roomStub(room), (_instance: RoomObject, state) =>
    state.storage.sql.exec<{ ref: string; data: string }>("SELECT ref, data FROM pending").toArray(),
  );
}

export function storedAlarm(room: string): Promise<number | null> {
  return runInDurableObject(roomStub(room), (_instance: RoomObject, state) => state.storage.getAlarm());
}

/** Waits until the stored roster shows `user`'s socket dropped (seat held); returns that row. */
export function seatMarkedDropped(room: string, user: string): Promise<StoredParticipant> {
  return until(async () => {
    const row = (await storedRoster(room)).find((p) => p.user === user);
    return row && row.disconnectedAt !== null ? row : undefined;
  }, `${user}'s seat in ${room} to be marked dropped`);
}

/** A bridge whose room link to `room` is open and synced (no summon: nothing here depends on MEDIA_TIMEOUT_MS). */
export async function attachedLink(room: string, bridgeId: string): Promise<Client> {
  await connectBridge(bridgeId);
  const link = await openRoomLink(room, bridgeId);
  link.reply((await link.incoming("sync")).id, { held: [] });
  return link;
}

/**
 * Everything the room did with the link's earlier frames is done once a frame
 * sent after them has had its effect: a server ICE candidate for `user`
 * (frames on one socket are handled in order).
 */
export async function flushLink(link: Client, user: string, client: Client, tag: string): Promise<void> {
  link.notify("iceCandidate", {
    user,
    endpoint: user,
    candidate: `candidate:${tag} 1 udp 1 127.0.0.1 9 typ host`,
    sdpMid: "0",
    sdpMLineIndex: 0,
  });
  await client.waitFor(
    (f) => f.method === "iceCandidate" && String(f.params?.candidate).startsWith(`candidate:${tag} `),
    `the flush candidate ${tag}`,
  );
}
