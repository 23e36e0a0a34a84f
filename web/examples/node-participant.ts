/**
 * Programmatic room participants in Node, as the original Java client was
 * used: each one joins, chats, waits until it heard everybody, and leaves.
 * No media (Node has no camera); it drives the same client library the
 * browser uses, over the `ws` package.
 *
 *   node web/examples/node-participant.ts --url ws://127.0.0.1:8787/room --room demo --users bot-1,bot-2 --messages 2
 *
 * Open the demo in a browser, join the same room, and watch the bots chat.
 */
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import WebSocket from "ws";
import { KurentoRoom } from "../src/client/kurento-room.ts";
import type { Room } from "../src/client/room.ts";

export interface ParticipantsOptions {
  /** The server's Room WebSocket, e.g. ws://127.0.0.1:8787/room. */
  readonly url: string;
  readonly room: string;
  readonly users: readonly string[];
  /** Messages each participant sends. */
  readonly messages: number;
  /** How long to wait for everybody's messages. */
  readonly timeoutMs?: number;
  readonly log?: (line: string) => void;
}

export interface ParticipantReport {
  readonly user: string;
  /** Who was in the room when this participant arrived. */
  readonly metOnJoin: string[];
  /** Everyone seen joining later. */
  readonly sawJoin: string[];
  /** "user: message" for every chat message heard (its own included, as the server echoes them). */
  readonly heard: string[];
}

/** Joins `users` one after the other, lets them chat, then makes them leave. */
export async function runParticipants(options: ParticipantsOptions): Promise<ParticipantReport[]> {
  const log = options.log ?? (() => undefined);
  const expected = options.users.length * options.messages;
  const timeoutMs = options.timeoutMs ?? 15_000;
  const rooms: Room[] = [];
  const reports: Array<ParticipantReport & { heard: string[]; sawJoin: string[] }> = [];
  try {
    for (const user of options.users) {
      const kurento = new KurentoRoom(options.url, { WebSocket });
      const room = kurento.Room({ room: options.room, user, subscribeToStreams: false });
      const report = { user, metOnJoin: [] as string[], sawJoin: [] as string[], heard: [] as string[] };
      room.on("participant-joined", ({ participant }) => report.sawJoin.push(participant.getID()));
      room.on("newMessage", ({ user: from, message }) => report.heard.push(`${from}: ${message}`));
      room.on("error-room", ({ error }) => log(`${user}: room error ${error.code}: ${error.message}`));
      const connected = await room.connect();
      report.metOnJoin = connected.participants.map((p) => p.getID());
      log(`${user} joined ${options.room} (already there: ${report.metOnJoin.join(", ") || "nobody"})`);
      rooms.push(room);
      reports.push(report);
    }
    for (let i = 1; i <= options.messages; i++) {
      for (const room of rooms) await room.sendMessage(`message ${i} from ${room.user}`);
    }
    const deadline = Date.now() + timeoutMs;
    while (reports.some((r) => r.heard.length < expected)) {
      if (Date.now() > deadline) throw new Error(`not every message arrived within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    log(`every participant heard all ${expected} messages`);
  } finally {
    for (const room of rooms.reverse()) {
      await room.leave();
      log(`${room.user} left`);
    }
  }
  return reports;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      url: { type: "string", default: "ws://127.0.0.1:8787/room" },
      room: { type: "string", default: "bots" },
      users: { type: "string", default: "bot-1,bot-2,bot-3" },
      messages: { type: "string", default: "2" },
    },
  });
  const reports = await runParticipants({
    url: values.url,
    room: values.room,
    users: values.users
      .split(",")
      .map((u) => u.trim())
      .filter(Boolean),
    messages: Number(values.messages),
    log: (line) => console.log(line),
  });
  for (const report of reports)
    console.log(`${report.user}: heard ${report.heard.length} messages, saw ${report.sawJoin.length} join(s)`);
}
