/**
 * Helpers of the recording tests (not a test file): the admin API, a room
 * whose members publish through a fake bridge (the protocol seam of
 * fake-bridge.ts), and the bridge's side of the upload API.
 */
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { expect } from "vitest";
import { type Recording, recording as recordingSchema } from "../../protocol/recordings.ts";
import type { RecordingLedger } from "../../worker/do/recording-ledger.ts";
import type { RoomObject } from "../../worker/do/room-object.ts";
import type { WorkerOption } from "../../worker/options.ts";
import { answerAttach, connectBridge, join, nextAttach, roomStub, waitForBridgeCount } from "./fake-bridge.ts";
import type { Client, Frame } from "./ws-client.ts";

export const ADMIN = { Authorization: "Bearer test-admin-token" };

export function api(path: string, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(`https://example.com${path}`, { ...init, headers: { ...ADMIN, ...init.headers } });
}

export function post(path: string, body?: unknown): Promise<Response> {
  return api(path, { method: "POST", ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
}

export async function getRecording(id: string): Promise<Recording> {
  const response = await api(`/api/recordings/${id}`);
  expect(response.status).toBe(200);
  return recordingSchema.parse(await response.json());
}

/** A room with a fake bridge attached; `publish` makes a member's stream live through it. */
export class RecordedRoom {
  readonly room: string;
  readonly bridge: Client;
  readonly bridgeId: string;
  link: Client | null = null;
  readonly members = new Map<string, Client>();

  private constructor(room: string, bridge: Client, bridgeId: string) {
    this.room = room;
    this.bridge = bridge;
    this.bridgeId = bridgeId;
  }

  static async open(room: string): Promise<RecordedRoom> {
    const bridgeId = `bridge-${room}`;
    const bridge = await connectBridge(bridgeId);
    await waitForBridgeCount(1);
    return new RecordedRoom(room, bridge, bridgeId);
  }

  async join(user: string): Promise<Client> {
    const { client } = await join(this.room, user);
    this.members.set(user, client);
    return client;
  }

  member(user: string): Client {
    const client = this.members.get(user);
    if (!client) throw new Error(`${user} has not joined ${this.room}`);
    return client;
  }

  /** The room link, once a command summoned the bridge (the first publish does). */
  theLink(): Client {
    if (!this.link) throw new Error("no room link yet");
    return this.link;
  }

  /** `user` publishes; the fake bridge answers; resolves once the stream is live. */
  async publish(user: string): Promise<void> {
    const client = this.member(user);
    const publishing = client.request("publishVideo", { sdpOffer: `v=0 ${user}`, doLoopback: false });
    if (!this.link) {
      const attach = await nextAttach([this.bridge], this.room);
      this.link = await answerAttach(this.bridge, attach.frame, this.bridgeId);
    }
    const command = await this.link.incoming("publish");
    expect(command.params?.user).toBe(user);
    this.link.reply(command.id, { sdpAnswer: `v=0 answer ${user}` });
    expect((await publishing).error).toBeUndefined();
  }

  /** The next `record` command the bridge gets; answered `{}` unless told otherwise. */
  async record(answer: "ok" | { code: number; message: string } = "ok"): Promise<RecordCommand> {
    const command = await this.theLink().incoming("record");
    if (answer === "ok") this.theLink().reply(command.id, {});
    else this.theLink().replyError(command.id, answer.code, answer.message);
    return command.params as unknown as RecordCommand;
  }
}

export interface RecordCommand {
  recording: string;
  user: string;
  stream: string;
  file: string;
  token: string;
  startedAt: number;
}

/** Waits for the notification `method` about recording `id` on `client`. */
export function notified(client: Client, method: "recordingStarted" | "recordingStopped", id: string): Promise<Frame> {
  return client.waitFor((f) => f.method === method && f.params?.id === id, `${method} ${id}`);
}

// ── The bridge's side of the upload API ─────────────────────────────────────
export function uploadPath(id: string, name: string, rest = ""): string {
  return `/bridge/recordings/${id}/files/${name}${rest}`;
}

export function bridgeCall(path: string, token: string | null, init: RequestInit = {}): Promise<Response> {
  const headers = { ...(token === null ? {} : { Authorization: `Bearer ${token}` }), ...init.headers };
  return SELF.fetch(`https://example.com${path}`, { ...init, headers });
}

/** Deterministic content: byte i of a file is (i * 7 + seed) mod 251. */
export function fileBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 7 + seed) % 251;
  return bytes;
}

/** Uploads `bytes` as the file, in parts of `partBytes`, as the bridge does; returns the complete's answer. */
export async function uploadFile(
  command: Pick<RecordCommand, "recording" | "file" | "token">,
  bytes: Uint8Array,
  partBytes: number,
  timing = { startOffsetMs: 0, durationMs: 1000 },
): Promise<Response> {
  const { recording, file, token } = command;
  const created = await bridgeCall(uploadPath(recording, file, "/uploads"), token, { method: "POST" });
  expect(created.status).toBe(201);
  const { uploadId } = (await created.json()) as { uploadId: string };
  const parts: Array<{ part: number; etag: string }> = [];
  for (let offset = 0, part = 1; offset < bytes.length; offset += partBytes, part++) {
    const path = uploadPath(recording, file, `/uploads/${encodeURIComponent(uploadId)}/parts/${part}`);
    const sent = await bridgeCall(path, token, { method: "PUT", body: bytes.slice(offset, offset + partBytes) });
    expect(sent.status).toBe(200);
    parts.push((await sent.json()) as { part: number; etag: string });
  }
  return completeUpload(command, uploadId, parts, bytes.length, timing);
}

export function completeUpload(
  command: Pick<RecordCommand, "recording" | "file" | "token">,
  uploadId: string,
  parts: Array<{ part: number; etag: string }>,
  length: number,
  timing = { startOffsetMs: 0, durationMs: 1000 },
): Promise<Response> {
  const path = uploadPath(command.recording, command.file, `/uploads/${encodeURIComponent(uploadId)}/complete`);
  return bridgeCall(path, command.token, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ parts, bytes: length, ...timing }),
  });
}

// ── Storage seams ───────────────────────────────────────────────────────────
export function ledgerStub() {
  return env.LEDGER.get(env.LEDGER.idFromName("ledger"));
}

/** Pretends every undelivered file of `id` ended `agoMs` ago, then runs the ledger's alarm. */
export async function expireDeliveries(id: string, agoMs: number): Promise<void> {
  await runInDurableObject(ledgerStub(), async (instance: RecordingLedger, state) => {
    state.storage.sql.exec(`UPDATE files SET ended_at = ? WHERE recording = ?`, Date.now() - agoMs, id);
    await instance.alarm();
  });
}

/** The running recording the room object stored (its `meta` row), or null. */
export function storedRecording(room: string): Promise<{ id: string; files: Record<string, string> } | null> {
  return runInDurableObject(roomStub(room), (_instance: RoomObject, state) => {
    const rows = state.storage.sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'recording'`).toArray();
    return rows[0] ? (JSON.parse(rows[0].value) as { id: string; files: Record<string, string> }) : null;
  });
}

/**
 * Gives the room object options the workers project does not set (its bindings are shared by every
 * test file): the object reads its options from `this.env` on each use, so a copy with the
 * overrides applies from the next frame on. Only for options that change no stored state.
 */
export async function withRoomOptions(room: string, overrides: Partial<Record<WorkerOption, string>>): Promise<void> {
  await runInDurableObject(roomStub(room), (instance: RoomObject) => {
    Object.assign(instance, { env: { ...env, ...overrides } });
  });
}
