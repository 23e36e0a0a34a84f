/** The bridge's credential (BRIDGE_SECRET or BRIDGE_KEY + BRIDGE_ID) and the operator's `npm run bridge:key`. */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../bridge/config.ts";
import { deriveBridgeKey } from "../../protocol/tokens/bridge-token.ts";

const MASTER = "master-bridge-secret-0123456789";

describe("bridge credentials", () => {
  it("BRIDGE_SECRET alone: the master secret", () => {
    expect(loadConfig({ BRIDGE_SECRET: MASTER }).bridgeSecret).toBe(MASTER);
  });

  it("BRIDGE_KEY with BRIDGE_ID: its own key only", async () => {
    const key = await deriveBridgeKey(MASTER, "kms-eu-1");
    const config = loadConfig({ BRIDGE_KEY: key, BRIDGE_ID: "kms-eu-1" });
    expect(config.bridgeSecret).toEqual({ bridgeKey: key });
    expect(config.bridgeId).toBe("kms-eu-1");
  });

  it("refuses neither, both, a key without its id, or a malformed key, without printing secrets", async () => {
    const key = await deriveBridgeKey(MASTER, "b1");
    expect(() => loadConfig({})).toThrow(/BRIDGE_SECRET: is required.*or BRIDGE_KEY with BRIDGE_ID/);
    expect(() => loadConfig({ BRIDGE_SECRET: MASTER, BRIDGE_KEY: key, BRIDGE_ID: "b1" })).toThrow(/not both/);
    expect(() => loadConfig({ BRIDGE_KEY: key })).toThrow(/BRIDGE_ID: is required with BRIDGE_KEY/);
    let message = "";
    try {
      loadConfig({ BRIDGE_KEY: "too-short-key", BRIDGE_ID: "b1" });
    } catch (error) {
      message = String(error);
    }
    expect(message).toMatch(/BRIDGE_KEY: must be the 43-character key/);
    expect(message).not.toContain("too-short-key");
  });

  it("npm run bridge:key prints the key the worker derives", async () => {
    const printed = execFileSync("node", ["scripts/bridge-key.ts", "kms-eu-1"], {
      env: { ...process.env, BRIDGE_SECRET: MASTER },
      encoding: "utf8",
    });
    expect(printed).toBe(`${await deriveBridgeKey(MASTER, "kms-eu-1")}\n`);
    let failed: { status?: number; stderr?: string } = {};
    try {
      execFileSync("node", ["scripts/bridge-key.ts", "kms-eu-1"], {
        env: { ...process.env, BRIDGE_SECRET: "" },
        encoding: "utf8",
        stdio: "pipe",
      });
    } catch (error) {
      failed = error as { status?: number; stderr?: string };
    }
    expect(failed.status).toBe(2);
    expect(failed.stderr).toMatch(/BRIDGE_SECRET must be set/);
  });
});
