/**
 * TURN credentials (README "TURN"): the TURN REST API scheme coturn checks
 * with `use-auth-secret`, computed with WebCrypto and checked here against
 * node:crypto's own HMAC-SHA1.
 */
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { iceServersFor, turnCredentials } from "../../protocol/ice-servers.ts";

describe("TURN credentials", () => {
  it("username '<expiry>:<user>', credential base64(HMAC-SHA1(secret, username))", async () => {
    const { username, credential } = await turnCredentials("a-turn-secret-of-length", "ann", 3600, 1_800_000_000);
    expect(username).toBe("1800003600:ann");
    expect(credential).toBe(createHmac("sha1", "a-turn-secret-of-length").update(username).digest("base64"));
  });

  it("STUN as given, TURN with credentials, nothing without configuration", async () => {
    const settings = {
      stunUrls: ["stun:stun.example.com:3478"],
      turnUrls: ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349"],
      turnSecret: "a-turn-secret-of-length",
      turnTtlSeconds: 600,
    };
    const servers = await iceServersFor(settings, "bob", 1_800_000_000);
    expect(servers).toEqual([
      { urls: ["stun:stun.example.com:3478"] },
      {
        urls: ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349"],
        username: "1800000600:bob",
        credential: createHmac("sha1", settings.turnSecret).update("1800000600:bob").digest("base64"),
      },
    ]);
    expect(await iceServersFor({ ...settings, turnUrls: [], stunUrls: [] }, "bob")).toEqual([]);
  });
});
