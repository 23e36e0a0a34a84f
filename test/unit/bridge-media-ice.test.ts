/**
 * The bridge's STUN/TURN settings for the media servers' side (README
 * "ICE servers and TURN", bridge configuration): KMS_STUN_* / KMS_TURN_*
 * validated in KMS's formats, secrets never echoed, and TURN REST API
 * credentials derived per endpoint in a turnUrl KMS (and the embedded media
 * server, with KMS's own parsing) accepts.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../bridge/config.ts";
import { endpointIceServers } from "../../bridge/media/room-endpoints.ts";
import { parseTurnUrl } from "../../media-server/objects/webrtc/ice-servers.ts";
import { turnCredentials } from "../../protocol/ice-servers.ts";

const BASE = { BRIDGE_SECRET: "0123456789abcdef0123" };

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...BASE, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return [...error.issues];
    throw error;
  }
  return [];
}

describe("bridge STUN/TURN configuration for the media servers", () => {
  it("is off by default", () => {
    expect(loadConfig(BASE).mediaIce).toBeNull();
  });

  it("reads KMS_STUN_ADDRESS/PORT and a static KMS_TURN_URL as given", () => {
    const config = loadConfig({
      ...BASE,
      KMS_STUN_ADDRESS: "192.0.2.10",
      KMS_TURN_URL: "kurento:s3cret@192.0.2.20:3478?transport=tcp",
    });
    expect(config.mediaIce).toEqual({
      stunAddress: "192.0.2.10",
      stunPort: 3478,
      turnUrl: "kurento:s3cret@192.0.2.20:3478?transport=tcp",
      turnSecret: null,
      turnTtlSeconds: 86_400,
    });
  });

  it("refuses what KMS cannot use, without echoing the TURN URL or secret", () => {
    expect(problems({ KMS_STUN_ADDRESS: "stun.example.com" })).toEqual([
      "KMS_STUN_ADDRESS: must be an IP address (KMS takes no domain names) (got 'stun.example.com')",
    ]);
    const [turn] = problems({ KMS_TURN_URL: "turn:user:hidden-pass@turn.example.com:3478" });
    expect(turn).toMatch(/^KMS_TURN_URL: must be KMS's/);
    expect(turn).not.toContain("hidden-pass");
    expect(problems({ KMS_TURN_URL: "192.0.2.20:3478" })).toEqual([
      "KMS_TURN_SECRET: is required with a KMS_TURN_URL without user:password@ (the credentials are derived from it)",
    ]);
    expect(problems({ KMS_STUN_ADDRESS: "192.0.2.10", KMS_STUN_PORT: "0" })[0]).toMatch(/^KMS_STUN_PORT:/);
  });

  it("derives TURN REST API credentials per endpoint in KMS's turnUrl format (user '<expiry>:<bridge id>')", async () => {
    const config = loadConfig({
      ...BASE,
      BRIDGE_ID: "bridge-a",
      KMS_TURN_URL: "192.0.2.20:3478?transport=udp",
      KMS_TURN_SECRET: "shared-turn-secret",
      KMS_TURN_TTL_SECONDS: "3600",
    });
    const ice = config.mediaIce;
    if (!ice) throw new Error("no mediaIce");
    const servers = await endpointIceServers(ice, config.bridgeId, 1_800_000_000);
    const expected = await turnCredentials("shared-turn-secret", "bridge-a", 3600, 1_800_000_000);
    expect(servers).toEqual({ turnUrl: `1800003600:bridge-a:${expected.credential}@192.0.2.20:3478?transport=udp` });
    // KMS's own regex (greedy user) reads the REST user name back whole.
    expect(parseTurnUrl(servers.turnUrl ?? "")).toEqual({
      username: "1800003600:bridge-a",
      credential: expected.credential,
      address: "192.0.2.20",
      port: 3478,
      transport: "udp",
    });
  });
});
