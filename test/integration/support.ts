/**
 * Shared helpers for the integration tests: one real `wrangler dev` per test
 * file, Room clients that are closed when the file ends, and bounded waits.
 * Not a test file itself (the integration project runs `*.test.ts`).
 */
import { expect } from "vitest";
import { startWranglerDev, type WranglerDev, type WranglerDevOptions } from "../../scripts/wrangler-dev.ts";
import { RoomTestClient } from "../helpers/room-client.ts";

export type Frame = Record<string, unknown>;

export function parse(frame: string): Frame {
  return JSON.parse(frame) as Frame;
}

/** A running worker plus every client opened against it, all ended by `stop()`. */
export class WorkerUnderTest {
  readonly dev: WranglerDev;
  readonly clients: RoomTestClient[] = [];
  private probes = 0;

  private constructor(dev: WranglerDev) {
    this.dev = dev;
  }

  static async start(options: WranglerDevOptions): Promise<WorkerUnderTest> {
    return new WorkerUnderTest(await startWranglerDev(options));
  }

  get url(): string {
    return this.dev.url;
  }

  async stop(): Promise<void> {
    for (const client of this.clients) client.terminate();
    await this.dev.stop();
  }

  /** Opens a Room WebSocket on `path` (`/room/<name>` or the legacy `/room`). */
  async open(path: string): Promise<RoomTestClient> {
    const client = await RoomTestClient.connect(this.dev.url.replace(/^http/, "ws") + path);
    this.clients.push(client);
    return client;
  }

  /** Opens `/room/<room>` and joins it as `user`; returns the client and the join result. */
  async join(room: string, user: string): Promise<{ client: RoomTestClient; sessionId: string; peers: string[] }> {
    const client = await this.open(`/room/${encodeURIComponent(room)}`);
    const result = await client.request<{ value: Array<{ id: string }>; sessionId: string }>("joinRoom", {
      user,
      room,
    });
    return { client, sessionId: result.sessionId, peers: result.value.map((p) => p.id).sort() };
  }

  /**
   * The users a newcomer sees in `room` (its join result), sorted. The probe
   * leaves again at once, so the room is as it was (the others do get a
   * participantJoined/participantLeft pair for it).
   */
  async roster(room: string): Promise<string[]> {
    const probe = await this.join(room, `probe-${++this.probes}`);
    await probe.client.request("leaveRoom");
    await probe.client.closedWithin();
    return probe.peers;
  }

  async rooms(): Promise<string[]> {
    const response = await fetch(`${this.dev.url}/getAllRooms`);
    expect(response.status).toBe(200);
    return (await response.json()) as string[];
  }

  /**
   * Polls `/getAllRooms` until `predicate` holds (bounded). The directory is
   * updated in the background (waitUntil) after the join/leave reply, so a
   * read right after a reply may be one step behind.
   */
  async waitForRooms(predicate: (rooms: string[]) => boolean, timeoutMs = 20_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    let rooms = await this.rooms();
    while (!predicate(rooms)) {
      if (Date.now() > deadline) throw new Error(`/getAllRooms never matched; last answer ${JSON.stringify(rooms)}`);
      await sleep(100);
      rooms = await this.rooms();
    }
    return rooms;
  }

  get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${this.dev.url}${path}`, { headers });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Sends a raw frame, then a `ping` request, and returns every frame that
 * arrived in between plus the pong: the answer to the raw frame (if any) comes
 * first, and the pong proves the socket is still usable.
 */
export async function rawThenPing(
  client: RoomTestClient,
  frame: string | Buffer,
): Promise<{ between: Frame[]; pong: Frame }> {
  const mark = client.frames.length;
  client.sendRaw(frame);
  await client.request("ping");
  const after = client.frames.slice(mark).map(parse);
  const pong = after.pop();
  if (!pong) throw new Error("no pong frame");
  return { between: after, pong };
}

/** Asserts that a raw frame is answered with exactly one error, then the socket still answers a ping. */
export async function expectRawError(
  client: RoomTestClient,
  frame: string | Buffer,
  expected: { id: string | number | null; code: number; message?: string | RegExp },
): Promise<Frame> {
  const { between, pong } = await rawThenPing(client, frame);
  expect(between).toHaveLength(1);
  const answer = between[0] as Frame;
  expect(answer).toMatchObject({ jsonrpc: "2.0", id: expected.id, error: { code: expected.code } });
  expect(answer).not.toHaveProperty("result");
  const message = (answer.error as { message: unknown }).message;
  expect(typeof message).toBe("string");
  if (expected.message !== undefined) expect(message).toMatch(expected.message);
  expect(pong).toMatchObject({ result: { value: "pong" } });
  return answer;
}

/**
 * Waits (bounded) for the server's close frame, then drops the TCP connection
 * instead of waiting for the server to end it (after refusing a huge frame,
 * workerd keeps reading the rest of it for seconds). The close code reported
 * is the one in the server's close frame.
 */
export async function serverCloseFrame(
  client: RoomTestClient,
  timeoutMs = 10_000,
): Promise<{ code: number; reason: string }> {
  const deadline = Date.now() + timeoutMs;
  while (client.ws.readyState === client.ws.OPEN) {
    if (Date.now() > deadline) throw new Error(`no close frame from the server within ${timeoutMs} ms`);
    await sleep(10);
  }
  client.terminate();
  return client.closedWithin();
}

/** Methods of the notifications a client has received so far (queued, not yet taken with `next`). */
export function notificationMethods(client: RoomTestClient): string[] {
  return client.notifications.map((n) => n.method);
}
