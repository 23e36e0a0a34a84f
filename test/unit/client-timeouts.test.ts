/**
 * The client library's media requests outlast the server's media timeout (README: MEDIA_TIMEOUT_MS):
 * `publishVideo` and `receiveVideoFrom` wait `mediaRequestTimeoutMs` (default 40 s, above the
 * server's default 25 s), so a client never gives up on a stream the server is still negotiating;
 * every other request keeps `requestTimeoutMs`.
 */
import { describe, expect, it, vi } from "vitest";
import { Connection, type WebSocketConstructor } from "../../web/src/client/connection.ts";
import { DEFAULT_MEDIA_REQUEST_TIMEOUT_MS } from "../../web/src/client/index.ts";
import { readFileSync } from "node:fs";

function connection(mediaRequestTimeoutMs?: number) {
  const c = new Connection(
    {
      WebSocket: class {} as unknown as WebSocketConstructor,
      requestTimeoutMs: 15_000,
      ...(mediaRequestTimeoutMs === undefined ? {} : { mediaRequestTimeoutMs }),
      openTimeoutMs: 10_000,
      heartbeatIntervalMs: 0,
      heartbeatTimeoutMs: 5_000,
    },
    { onNotification: () => undefined, onLost: () => undefined },
  );
  const spy = vi.spyOn(c.peer, "request").mockResolvedValue({ sdpAnswer: "v=0", sessionId: "s" });
  return { c, timeouts: () => spy.mock.calls.map((call) => [call[0], call[2]]) };
}

describe("client request timeouts", () => {
  it("the default media request timeout is above the server's default MEDIA_TIMEOUT_MS (wrangler.toml)", () => {
    const toml = readFileSync(new URL("../../wrangler.toml", import.meta.url), "utf8");
    const server = Number(/^MEDIA_TIMEOUT_MS\s*=\s*"(\d+)"/m.exec(toml)?.[1]);
    expect(server).toBe(25_000);
    expect(DEFAULT_MEDIA_REQUEST_TIMEOUT_MS).toBe(40_000);
    expect(DEFAULT_MEDIA_REQUEST_TIMEOUT_MS).toBeGreaterThan(server);
  });

  it("publishVideo and receiveVideoFrom use mediaRequestTimeoutMs; other requests the general one", async () => {
    const { c, timeouts } = connection(40_000);
    await c.request("publishVideo", { sdpOffer: "v=0", doLoopback: false });
    await c.request("receiveVideoFrom", { sender: "bob_webcam", sdpOffer: "v=0" });
    await c.request("unpublishVideo", {}).catch(() => undefined);
    await c.request("leaveRoom", {}, 3_000).catch(() => undefined);
    expect(timeouts()).toEqual([
      ["publishVideo", 40_000],
      ["receiveVideoFrom", 40_000],
      ["unpublishVideo", undefined], // the peer's own default: requestTimeoutMs
      ["leaveRoom", 3_000],
    ]);
    expect(c.peer.options.timeoutMs).toBe(15_000);
  });

  it("without mediaRequestTimeoutMs a Connection keeps one timeout for everything, as before", async () => {
    const { c, timeouts } = connection();
    await c.request("publishVideo", { sdpOffer: "v=0", doLoopback: false });
    expect(timeouts()).toEqual([["publishVideo", undefined]]);
  });
});
