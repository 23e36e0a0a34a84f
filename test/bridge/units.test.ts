/**
 * Unit-level checks of the bridge's pure parts: KMS selection (the original
 * FixedNKmsManager rules), configuration validation, reconnect backoff and
 * the Prometheus rendering.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_HAT, loadConfig, toWebSocketUrl } from "../../bridge/config.ts";
import {
  hasRoom,
  isSpecialUser,
  loadOf,
  type SelectionCandidate,
  selectMediaServer,
} from "../../protocol/media-server-selection.ts";
import { BridgeMetrics } from "../../bridge/metrics.ts";
import { backoffDelay } from "../../protocol/backoff.ts";
import { RoomCode } from "../../protocol/errors.ts";

const SECRET = "0123456789abcdef-test-secret";

function kms(pipelines: number, limit = 10, available = true): SelectionCandidate {
  return { pipelines, limit, available };
}

/** Keeps the round-robin cursor between picks, as the bridge and the pool do. */
function selectorOf() {
  let cursor = 0;
  return {
    select(list: readonly SelectionCandidate[], user: string) {
      const choice = selectMediaServer(list, user, cursor);
      if (choice.ok) cursor = choice.nextCursor;
      return choice;
    },
  };
}

describe("KMS selection (FixedNKmsManager rules)", () => {
  it("hands KMSes out round-robin", () => {
    const selector = selectorOf();
    const list = [kms(0), kms(0), kms(0)];
    const picks = Array.from({ length: 7 }, () => {
      const choice = selector.select(list, "alice");
      if (!choice.ok) throw new Error(choice.message);
      expect(choice.rule).toBe("round-robin");
      return choice.index;
    });
    expect(picks).toEqual([0, 1, 2, 0, 1, 2, 0]);
  });

  it("gives users whose name starts with 'special' (case-sensitive, like the original's String.startsWith) the least-loaded KMS", () => {
    const selector = selectorOf();
    const list = [kms(7), kms(2), kms(5)];
    for (const user of ["special", "specialUser", "special_1"]) {
      expect(isSpecialUser(user)).toBe(true);
      expect(selector.select(list, user)).toMatchObject({ ok: true, index: 1, rule: "least-loaded" });
    }
    for (const user of ["notspecial", "Special_1", "SPECIAL-guest"]) {
      expect(isSpecialUser(user)).toBe(false);
    }
    // Round-robin ignores load: the next plain user still gets index 0.
    expect(selector.select(list, "bob")).toMatchObject({ ok: true, index: 0 });
  });

  it("measures load as pipelines ÷ limit, capped at 1", () => {
    expect(loadOf(kms(250, 1000))).toBe(0.25);
    expect(loadOf(kms(1500, 1000))).toBe(1);
    expect(hasRoom(kms(999, 1000))).toBe(true);
    expect(hasRoom(kms(1000, 1000))).toBe(false);
    // Least loaded by ratio, not by count: 3/4 is more loaded than 5/100.
    const selector = selectorOf();
    expect(selector.select([kms(3, 4), kms(5, 100)], "specialX")).toMatchObject({ ok: true, index: 1 });
  });

  it("skips full and unreachable KMSes and refuses with 204 when none has room", () => {
    const selector = selectorOf();
    expect(selector.select([kms(10, 10), kms(0, 10, false), kms(3, 10)], "carol")).toMatchObject({
      ok: true,
      index: 2,
    });
    const full = selector.select([kms(10, 10), kms(1, 1)], "dave");
    expect(full).toEqual({
      ok: false,
      code: RoomCode.ROOM_CANNOT_BE_CREATED,
      message: "No resources left to create new room",
    });
    expect(selector.select([kms(10, 10)], "specialEve")).toMatchObject({
      ok: false,
      code: RoomCode.ROOM_CANNOT_BE_CREATED,
    });
  });

  it("answers 301 when no KMS is connected at all", () => {
    const choice = selectorOf().select([kms(0, 10, false), kms(0, 10, false)], "frank");
    expect(choice).toMatchObject({ ok: false, code: RoomCode.MEDIA_GENERIC });
  });
});

describe("configuration from the environment", () => {
  it("applies the documented defaults", () => {
    const config = loadConfig({ BRIDGE_SECRET: SECRET });
    expect(config.workerUrl).toBe("http://127.0.0.1:8787");
    expect(config.kms).toEqual([{ uri: "ws://127.0.0.1:8888/kurento", limit: 1000 }]);
    expect(config.requestTimeoutMs).toBe(20_000);
    expect(config.hat).toEqual({ url: "http://127.0.0.1:8787/img/mario-wings.png", ...DEFAULT_HAT });
    expect(config.httpPort).toBe(9090);
    expect(config.httpHost).toBe("127.0.0.1");
    expect(config.logLevel).toBe("info");
    expect(config.bridgeId).toMatch(/^bridge-/);
  });

  it("reads KMS_URIS as a comma list or a JSON array, with KMS_LIMIT for each", () => {
    const list = loadConfig({
      BRIDGE_SECRET: SECRET,
      KMS_URIS: " ws://a:8888/kurento , wss://b.example/kurento ",
      KMS_LIMIT: "5",
    });
    expect(list.kms).toEqual([
      { uri: "ws://a:8888/kurento", limit: 5 },
      { uri: "wss://b.example/kurento", limit: 5 },
    ]);
    const json = loadConfig({ BRIDGE_SECRET: SECRET, KMS_URIS: '["ws://a:8888/kurento","ws://c:8888/kurento"]' });
    expect(json.kms.map((entry) => entry.uri)).toEqual(["ws://a:8888/kurento", "ws://c:8888/kurento"]);
  });

  it("takes every variable, and treats empty values as unset", () => {
    const config = loadConfig({
      WORKER_URL: "https://rooms.example.com/",
      BRIDGE_ID: "bridge-eu-1",
      BRIDGE_SECRET: SECRET,
      REQUEST_TIMEOUT_MS: "5000",
      HAT_URL: "https://cdn.example.com/wizard.png?v=2",
      HAT_OFFSET_X: "-0.2",
      HAT_OFFSET_Y: "-1.35",
      HAT_WIDTH: "1.5",
      HAT_HEIGHT: "1.5",
      BRIDGE_HTTP_PORT: "0",
      BRIDGE_HTTP_HOST: "0.0.0.0",
      LOG_LEVEL: "debug",
      KMS_LIMIT: "",
    });
    expect(config).toMatchObject({
      workerUrl: "https://rooms.example.com",
      bridgeId: "bridge-eu-1",
      requestTimeoutMs: 5000,
      hat: { url: "https://cdn.example.com/wizard.png?v=2", offsetX: -0.2, offsetY: -1.35, width: 1.5, height: 1.5 },
      httpPort: 0,
      httpHost: "0.0.0.0",
      logLevel: "debug",
    });
    expect(config.kms[0]?.limit).toBe(1000);
    expect(toWebSocketUrl(config.workerUrl)).toBe("wss://rooms.example.com");
    expect(toWebSocketUrl("http://127.0.0.1:8787")).toBe("ws://127.0.0.1:8787");
  });

  it("rejects a bad environment with one clear line per problem (and never echoes the secret)", () => {
    let error: unknown;
    try {
      loadConfig({
        BRIDGE_SECRET: "short-secret",
        WORKER_URL: "ftp://nope",
        KMS_URIS: "http://kms:8888/kurento",
        KMS_LIMIT: "0",
        REQUEST_TIMEOUT_MS: "soon",
        HAT_WIDTH: "-1",
        BRIDGE_HTTP_PORT: "70000",
        LOG_LEVEL: "loud",
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const issues = (error as ConfigError).issues;
    const byKey = (key: string) => issues.find((issue) => issue.startsWith(`${key}`)) ?? "";
    expect(byKey("BRIDGE_SECRET")).toMatch(/at least 16 characters/);
    expect(byKey("BRIDGE_SECRET")).not.toContain("short-secret");
    expect(byKey("WORKER_URL")).toMatch(/http\(s\) URL.*ftp:/);
    expect(byKey("KMS_URIS")).toMatch(/ws:\/\/ or wss:\/\//);
    expect(byKey("KMS_LIMIT")).toMatch(/KMS_LIMIT: .*(>=|at least|too small)/i);
    expect(byKey("REQUEST_TIMEOUT_MS")).toContain("'soon'");
    expect(byKey("HAT_WIDTH")).toMatch(/positive/);
    expect(byKey("BRIDGE_HTTP_PORT")).toContain("'70000'");
    expect(byKey("LOG_LEVEL")).toMatch(/debug, info, warn, error, silent/);
    expect((error as Error).message).toMatch(/^Invalid bridge configuration:\n {2}- /);
  });

  it("requires BRIDGE_SECRET and refuses duplicate or malformed KMS lists", () => {
    expect(() => loadConfig({})).toThrow(/BRIDGE_SECRET: is required/);
    expect(() => loadConfig({ BRIDGE_SECRET: SECRET, KMS_URIS: "ws://a/kurento,ws://a/kurento" })).toThrow(
      /KMS_URIS: lists the same URI twice/,
    );
    expect(() => loadConfig({ BRIDGE_SECRET: SECRET, KMS_URIS: "[1,2]" })).toThrow(
      /KMS_URIS: looks like JSON but is not an array of strings/,
    );
    expect(() => loadConfig({ BRIDGE_SECRET: SECRET, KMS_URIS: " , " })).toThrow(/KMS_URIS: needs at least one URI/);
    expect(() => loadConfig({ BRIDGE_SECRET: SECRET, BRIDGE_ID: "has spaces" })).toThrow(/BRIDGE_ID: may contain/);
  });
});

describe("reconnect backoff", () => {
  it("doubles from 0.5 s up to 10 s, with 50–100 % jitter", () => {
    const options = { minMs: 500, maxMs: 10_000 };
    expect([0, 1, 2, 3, 4, 5, 6].map((attempt) => backoffDelay(attempt, options, () => 1))).toEqual([
      500, 1000, 2000, 4000, 8000, 10_000, 10_000,
    ]);
    expect(backoffDelay(0, options, () => 0)).toBe(250);
    expect(backoffDelay(50, options, () => 0.5)).toBe(7500);
  });
});

describe("metrics", () => {
  it("renders gauges and the command latency histogram in Prometheus text format", () => {
    const metrics = new BridgeMetrics();
    metrics.observeCommand("publish", 0.04);
    metrics.observeCommand("publish", 0.3);
    metrics.observeCommand("subscribe", 0.02, RoomCode.MEDIA_SDP);
    const text = metrics.render([
      { name: "bridge_rooms", help: "Rooms.", samples: [{ value: 2 }] },
      { name: "bridge_kms_connected", help: "KMS.", samples: [{ labels: { uri: 'ws://a"b/kurento' }, value: 1 }] },
    ]);
    expect(text).toContain("# TYPE bridge_rooms gauge\nbridge_rooms 2\n");
    expect(text).toContain('bridge_kms_connected{uri="ws://a\\"b/kurento"} 1');
    expect(text).toContain("# TYPE bridge_command_duration_seconds histogram");
    expect(text).toContain('bridge_command_duration_seconds_bucket{op="publish",le="0.05"} 1');
    expect(text).toContain('bridge_command_duration_seconds_bucket{op="publish",le="0.5"} 2');
    expect(text).toContain('bridge_command_duration_seconds_bucket{op="publish",le="+Inf"} 2');
    expect(text).toContain('bridge_command_duration_seconds_count{op="subscribe"} 1');
    expect(text).toContain('bridge_command_errors_total{op="subscribe",code="302"} 1');
    expect(text.endsWith("\n")).toBe(true);
  });
});
