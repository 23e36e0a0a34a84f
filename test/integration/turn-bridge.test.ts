/**
 * The media server's side of TURN (README "ICE servers and TURN"): with
 * KMS_TURN_URL and KMS_TURN_SECRET the bridge gives every WebRtcEndpoint it
 * creates a TURN server with credentials of its own (`<expiry>:<BRIDGE_ID>`),
 * through kurento-client's setTurnUrl; the media server then allocates on a
 * real coturn and offers a relay candidate, while the publish still works.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSystem, type System } from "../../scripts/system.ts";
import { startTurn, type TurnHandle } from "../../scripts/turn.ts";
import { RoomTestClient } from "../helpers/room-client.ts";
import { type MediaLeg, publish, until } from "./media-peers.ts";

let turn: TurnHandle;
let system: System;
const clients: RoomTestClient[] = [];
const legs: MediaLeg[] = [];

beforeAll(async () => {
  turn = await startTurn();
  system = await startSystem({
    mediaServerWebrtc: { loopbackOnly: true },
    bridgeEnv: { KMS_TURN_URL: `127.0.0.1:${turn.port}?transport=udp`, KMS_TURN_SECRET: turn.secret },
  });
});

afterAll(async () => {
  for (const leg of legs) {
    leg.stopCandidates();
    await leg.peer.close().catch(() => undefined);
  }
  for (const client of clients) client.terminate();
  await system?.stop();
  await turn?.stop();
});

describe("TURN on the media server's side", () => {
  it("a published endpoint allocates on coturn with the bridge's own credentials (and the embedded media server trickles its relay candidate)", async () => {
    const client = await RoomTestClient.connect(`${system.url.replace(/^http/, "ws")}/room/turn-bridge`);
    clients.push(client);
    await client.request("joinRoom", { user: "alice", room: "turn-bridge" });
    const leg = await publish(client, "alice");
    legs.push(leg);
    // coturn logs the allocation under the bridge's REST user name (the first, unauthenticated request
    // gets TURN's usual 401 challenge; the authenticated one succeeds).
    const allocated = /user <\d+:local-bridge>: incoming packet ALLOCATE processed, success/;
    await until(() => allocated.test(turn.log()), 30_000, "coturn to log an allocation by the bridge");
    // The endpoint's relay candidate reaches the client through trickle ICE.
    // KMS (libnice) allocates at once but may trickle its relay candidate much later, or not before
    // a direct pair connected; only the embedded server's trickle is asserted.
    if (system.mediaBackend === "kms") return;
    const relayCandidates = () =>
      client.notifications.filter(
        (n) =>
          n.method === "iceCandidate" && / typ relay /.test(String((n.params as { candidate?: unknown }).candidate)),
      );
    await until(() => relayCandidates().length > 0, 30_000, "a relay candidate from the media server");
    // On coturn's relay address (127.0.0.1 here), for alice's own publisher endpoint.
    expect(relayCandidates()[0]?.params).toMatchObject({
      endpointName: "alice",
      candidate: expect.stringContaining("127.0.0.1"),
    });
  });
});
