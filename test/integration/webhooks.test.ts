/**
 * Webhooks against the whole system (README "Webhooks"): a local receiver
 * (examples/webhook-receiver.ts, signature checked) gets every room event in
 * order with unique ids; while it is down the events wait and are retried;
 * a worker killed (SIGKILL) and restarted meanwhile loses none.
 */
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import type { Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWebhookReceiver } from "../../examples/webhook-receiver.ts";
import type { WebhookEvent } from "../../protocol/webhooks.ts";
import { startSystem, type System } from "../../scripts/system.ts";
import type { WranglerDev } from "../../scripts/wrangler-dev.ts";
import { RoomTestClient } from "../helpers/room-client.ts";
import { type MediaLeg, publish, until } from "./media-peers.ts";

const SECRET = "integration-webhook-secret";
let receiver: Server;
let receiverUp = true;
/** Requests that reached the receiver (any outcome), by event id. */
const attempts = new Map<string, number>();
const received: WebhookEvent[] = [];
let persistTo: string;
let system: System;
let worker: WranglerDev;
const clients: RoomTestClient[] = [];
const legs: MediaLeg[] = [];

beforeAll(async () => {
  receiver = createWebhookReceiver({
    secret: SECRET,
    onEvent: (event) => {
      if (!receiverUp) throw new Error("receiver down");
      received.push(event);
    },
  });
  receiver.on("request", (request) => {
    const id = String(request.headers["x-room-event-id"] ?? "");
    attempts.set(id, (attempts.get(id) ?? 0) + 1);
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const port = (receiver.address() as AddressInfo).port;
  persistTo = mkdtempSync(joinPath(tmpdir(), "webhooks-state-"));
  system = await startSystem({
    persistTo,
    vars: { WEBHOOK_URLS: `http://127.0.0.1:${port}/hook`, WEBHOOK_SECRET: SECRET, RECONNECT_WINDOW_SECONDS: "3" },
    mediaServerWebrtc: { loopbackOnly: true },
  });
  worker = system.worker;
});

afterAll(async () => {
  for (const leg of legs) {
    leg.stopCandidates();
    await leg.peer.close().catch(() => undefined);
  }
  for (const client of clients) client.terminate();
  await system?.stop();
  if (worker && worker !== system?.worker) await worker.stop();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

async function join(room: string, user: string): Promise<RoomTestClient> {
  const client = await RoomTestClient.connect(`${worker.url.replace(/^http/, "ws")}/room/${room}`);
  clients.push(client);
  await client.request("joinRoom", { user, room });
  return client;
}

/** The events of `room` received so far, as "type user". */
function story(room: string): string[] {
  return received.filter((e) => e.room === room).map((e) => (e.data.user ? `${e.type} ${e.data.user}` : e.type));
}

async function storyEnds(room: string, timeoutMs: number): Promise<string[]> {
  await until(() => story(room).at(-1) === "roomClosed", timeoutMs, `roomClosed of ${room} at the receiver`);
  return story(room);
}

describe("webhooks", () => {
  it("every event of a room reaches the receiver signed, in order, with unique ids and no gap", async () => {
    const room = "hooked";
    const alice = await join(room, "alice");
    const bob = await join(room, "bob");
    const leg = await publish(alice, "alice");
    legs.push(leg);
    await alice.request("unpublishVideo");
    await bob.request("leaveRoom");
    await alice.request("leaveRoom");
    expect(await storyEnds(room, 60_000)).toEqual([
      "roomCreated",
      "participantJoined alice",
      "participantJoined bob",
      "streamPublished alice",
      "streamUnpublished alice",
      "participantLeft bob",
      "participantLeft alice",
      "roomClosed",
    ]);
    const events = received.filter((e) => e.room === room);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    expect(events.find((e) => e.type === "streamPublished")?.data).toEqual({ user: "alice", streamId: "alice_webcam" });
    for (let i = 1; i < events.length; i++) {
      expect(events[i]?.timestamp).toBeGreaterThanOrEqual(events[i - 1]?.timestamp ?? 0);
    }
  });

  it("a receiver that is down gets every event afterwards, in order, even across a worker crash and restart", async () => {
    const room = "hooked-down";
    receiverUp = false;
    const carol = await join(room, "carol");
    await join(room, "dave");
    await carol.request("leaveRoom");
    // The first event is refused, then retried (with backoff) under the same id.
    await until(
      () => [...attempts.values()].some((n) => n >= 2) && received.every((e) => e.room !== room),
      60_000,
      "a retried delivery while the receiver is down",
    );

    // A crash while events wait: dave's socket drops, his seat expires after the restart (3 s window).
    await worker.kill();
    worker = await worker.restart();
    receiverUp = true;
    expect(await storyEnds(room, 120_000)).toEqual([
      "roomCreated",
      "participantJoined carol",
      "participantJoined dave",
      "participantLeft carol",
      "participantLeft dave",
      "roomClosed",
    ]);
    const events = received.filter((e) => e.room === room);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    const first = events[0];
    expect(first && (attempts.get(first.id) ?? 0)).toBeGreaterThanOrEqual(2);
  });
});
