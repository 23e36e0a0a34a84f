/**
 * The Node example (web/examples/node-participant.ts) against the real
 * worker: programmatic participants join, chat and leave, and a watcher in
 * the room sees exactly that.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { startWranglerDev, type WranglerDev } from "../../scripts/wrangler-dev.ts";
import { runParticipants } from "../../web/examples/node-participant.ts";
import { joined, leaveAll, names, record, uniqueRoom, until } from "./support.ts";

let dev: WranglerDev;

beforeAll(async () => {
  dev = await startWranglerDev({});
});

afterAll(async () => {
  await leaveAll();
  await dev?.stop();
});

it("three programmatic participants join, hear every message (their own included) and leave", async () => {
  const roomName = uniqueRoom("bots");
  const watcher = await joined(dev.url, roomName, "watcher");
  const log = record(watcher);
  const reports = await runParticipants({
    url: `${dev.url.replace(/^http/, "ws")}/room`,
    room: roomName,
    users: ["bot-1", "bot-2", "bot-3"],
    messages: 2,
  });
  expect(reports.map((r) => r.metOnJoin)).toEqual([["watcher"], ["watcher", "bot-1"], ["watcher", "bot-1", "bot-2"]]);
  expect(reports.map((r) => r.sawJoin)).toEqual([["bot-2", "bot-3"], ["bot-3"], []]);
  const all = ["bot-1", "bot-2", "bot-3"].flatMap((u) => [1, 2].map((i) => `${u}: message ${i} from ${u}`)).sort();
  for (const report of reports) expect([...report.heard].sort()).toEqual(all);
  await until(() => names(log, ["participant-left"]).length === 3, 30_000, "the watcher to see the bots leave");
  expect(names(log, ["participant-joined", "participant-left"])).toEqual([
    "participant-joined",
    "participant-joined",
    "participant-joined",
    "participant-left",
    "participant-left",
    "participant-left",
  ]);
  expect(watcher.getRemoteParticipants()).toEqual([]);
});
