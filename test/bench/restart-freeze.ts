/**
 * `npm run bench:restart-freeze`: how long a subscriber's video freezes
 * while the worker (`wrangler dev`) restarts under a call, (a) killed with
 * SIGKILL (a crash) and (b) stopped gracefully (SIGTERM), each restarted on
 * the same port and storage.
 *
 * Media runs between the peers and the media server, not through the worker,
 * so the goal is no freeze at all. Per round: alice publishes synthetic video
 * (50 packets/s, one every 20 ms), bob subscribes (werift peers); the worker
 * is restarted, both resume with `connect {sessionId}`, and the room syncs
 * with the bridge again (bob's `onIceCandidate` is answered: a media command
 * goes through only after `sync`). At bob, over the whole restart plus 3 s:
 * the longest gap between two received packets and the packets lost (gaps in
 * the RTP sequence numbers); the same measured over 5 s before the restart
 * is the baseline (the normal jitter of this machine). Sender, media server,
 * bridge and receiver all run in this one process (like the integration
 * tests), so the longest event-loop stall over the same span is printed too:
 * a gap no longer than it is this process's scheduling, not the network.
 *
 * Not a test: numbers only. ROUNDS (default 3) rounds of each kind.
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { startSystem, waitForBridges } from "../../scripts/system.ts";
import type { WranglerDev } from "../../scripts/wrangler-dev.ts";
import { startSyntheticMedia } from "../bridge/helpers/peers.ts";
import { RoomTestClient } from "../helpers/room-client.ts";
import { publish, recordVideoPackets, subscribe, until } from "../integration/media-peers.ts";

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const PACKETS_PER_SECOND = 50;

interface Row {
  kind: string;
  round: number;
  /** From the signal until both have resumed and the room has synced with the bridge. */
  signallingMs: number;
  baselineGapMs: number;
  maxGapMs: number;
  /** The longest this process's event loop was blocked over the same span. */
  loopStallMs: number;
  lost: number;
  received: number;
  mediaErrors: number;
}

const system = await startSystem({
  // A window far longer than a restart: this measures media, not seat expiry.
  vars: { RECONNECT_WINDOW_SECONDS: "120" },
  mediaServerWebrtc: { loopbackOnly: true },
});
let worker: WranglerDev = system.worker;
const rows: Row[] = [];

function wsUrl(room: string): string {
  return `${worker.url.replace(/^http/, "ws")}/room/${room}`;
}

async function round(kind: "SIGKILL" | "SIGTERM", index: number): Promise<Row> {
  const room = `freeze-${kind.toLowerCase()}-${index}`;
  const alice = await RoomTestClient.connect(wsUrl(room));
  const aliceJoin = await alice.request<{ sessionId: string }>("joinRoom", { user: "alice", room });
  const bob = await RoomTestClient.connect(wsUrl(room));
  const bobJoin = await bob.request<{ sessionId: string }>("joinRoom", { user: "bob", room });
  const published = await publish(alice, "alice");
  await bob.next("participantPublished", 30_000);
  const subscribed = await subscribe(bob, "alice");
  const marker = Buffer.from(`FREEZE-${kind}-${index}`);
  const packets = recordVideoPackets(subscribed, marker);
  const media = startSyntheticMedia(published.peer.video, marker, PACKETS_PER_SECOND, 3000);
  try {
    await until(() => packets.count() > PACKETS_PER_SECOND, 30_000, "RTP at bob");
    // Baseline: five seconds of normal flow.
    const baselineFrom = performance.now();
    const baselineCount = packets.count();
    await until(() => packets.count() >= baselineCount + 5 * PACKETS_PER_SECOND, 30_000, "five seconds of RTP");
    const baseline = packets.window(baselineFrom, performance.now());

    published.stopCandidates();
    subscribed.stopCandidates();
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const from = performance.now();
    worker = await worker.restart({ signal: kind });
    const alice2 = await RoomTestClient.connect(wsUrl(room));
    await alice2.request("connect", { sessionId: aliceJoin.sessionId });
    const bob2 = await RoomTestClient.connect(wsUrl(room));
    await bob2.request("connect", { sessionId: bobJoin.sessionId });
    await waitForBridges(worker.url, 1, 60_000);
    const candidate = subscribed.peer.candidates[0];
    if (!candidate) throw new Error("bob's peer gathered no candidate");
    await bob2.request("onIceCandidate", { endpointName: "alice", ...candidate });
    const signallingMs = performance.now() - from;
    const resumedCount = packets.count();
    await until(() => packets.count() >= resumedCount + 3 * PACKETS_PER_SECOND, 30_000, "three seconds of RTP");
    const across = packets.window(from, performance.now());
    loop.disable();
    await alice2.request("ping");
    const mediaErrors = alice2.count("mediaError") + bob2.count("mediaError");

    media.stop();
    await alice2.request("leaveRoom");
    await bob2.request("leaveRoom");
    for (const client of [alice, bob, alice2, bob2]) client.terminate();
    return {
      kind: kind === "SIGKILL" ? "kill -9" : "graceful",
      round: index,
      signallingMs,
      baselineGapMs: baseline.maxGapMs,
      maxGapMs: across.maxGapMs,
      loopStallMs: loop.max / 1e6,
      lost: across.lost,
      received: across.received,
      mediaErrors,
    };
  } finally {
    media.stop();
    await published.peer.close();
    await subscribed.peer.close();
  }
}

try {
  for (const kind of ["SIGKILL", "SIGTERM"] as const) {
    for (let i = 1; i <= ROUNDS; i++) {
      const row = await round(kind, i);
      rows.push(row);
      process.stderr.write(`${row.kind} round ${row.round}: max gap ${row.maxGapMs.toFixed(0)} ms\n`);
    }
  }
} finally {
  await system.stop();
  if (worker !== system.worker) await worker.stop();
}

const pad = (value: string, width: number): string => value.padStart(width);
console.log(`\nVideo at a subscriber while the worker restarts (${PACKETS_PER_SECOND} packets/s, one every 20 ms)\n`);
console.log(
  `${"restart".padEnd(9)} ${pad("round", 5)} ${pad("signalling back (s)", 19)} ${pad("baseline max gap (ms)", 21)} ${pad("max gap (ms)", 12)} ${pad("event-loop stall (ms)", 21)} ${pad("lost", 5)} ${pad("received", 8)} ${pad("mediaError", 10)}`,
);
for (const row of rows) {
  console.log(
    `${row.kind.padEnd(9)} ${pad(String(row.round), 5)} ${pad((row.signallingMs / 1000).toFixed(1), 19)} ${pad(row.baselineGapMs.toFixed(0), 21)} ${pad(row.maxGapMs.toFixed(0), 12)} ${pad(row.loopStallMs.toFixed(0), 21)} ${pad(String(row.lost), 5)} ${pad(String(row.received), 8)} ${pad(String(row.mediaErrors), 10)}`,
  );
}
// The kurento-client inside the bridge keeps timers; the numbers are out.
process.exit(0);
