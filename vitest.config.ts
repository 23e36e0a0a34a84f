import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { configDefaults, defineConfig } from "vitest/config";
import { isolatedWranglerConfig } from "./scripts/wrangler-dev.ts";

// One config, four kinds of test (README "Tests"):
// - unit: plain Node, the pure room core, schemas, tokens;
// - workers: inside workerd, the Durable Objects through real WebSocket upgrades;
// - integration: Node processes talking to real servers over 127.0.0.1
//   (wrangler dev, the bridge, the embedded media server);
// - e2e: real Chromium against the whole stack.
// The media tests run twice, once per media back end: `integration` and `e2e`
// against the embedded media server, `integration-kms` and `e2e-kms` against
// a real Kurento Media Server started from KMS_HOME (scripts/kms.ts; the
// project sets MEDIA_BACKEND, which startSystem reads). Files named
// `*.kms.test.ts` test what only KMS has (the hat filter, KMS faults) and run
// in the KMS projects only; a test that differs by back end says which in its
// name. Without KMS_HOME the KMS projects fail, loudly: never skipped.

/** kurento-client call sequences compared across the two back ends (docs/media-server.md, differences). */
const CONFORMANCE = "test/conformance/kurento-api.test.ts";
/** Media tests that run against both back ends. */
const MEDIA_INTEGRATION = [
  "test/integration/media-system.test.ts",
  // Several streams per participant (webcam + screen): one publisher endpoint per stream on both.
  "test/integration/multi-stream.test.ts",
  CONFORMANCE,
  "test/conformance/recorder.test.ts",
  // The bridge sets STUN/TURN on every endpoint through the same kurento-client calls on both.
  "test/integration/turn-bridge.test.ts",
  // Recording: KMS's RecorderEndpoint and the embedded one, through the bridge and through the whole system.
  "test/integration/bridge-recording.test.ts",
  "test/integration/bridge-recording-system.test.ts",
];
const MEDIA_E2E = ["test/e2e/media.test.ts", "test/e2e/loopback.test.ts", "test/e2e/recording.test.ts"];
const KMS_ONLY = "**/*.kms.test.ts";
const KMS_ENV = { MEDIA_BACKEND: "kms" };

export default defineConfig({
  test: {
    // Two cores: integration and browser files start real servers and
    // Chromium, so files never run side by side, across projects too.
    fileParallelism: false,
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          environment: "node",
        },
      },
      {
        plugins: [
          cloudflareTest({
            // Not ./wrangler.toml itself: wrangler would read a developer's .dev.vars beside it.
            wrangler: { configPath: isolatedWranglerConfig() },
            miniflare: {
              bindings: {
                ADMIN_TOKEN: "test-admin-token",
                BRIDGE_SECRET: "test-bridge-secret",
                // Long enough that a loaded machine never hits them by accident;
                // the tests that exercise them wait for them, bounded above.
                MEDIA_TIMEOUT_MS: "10000",
                RECONNECT_WINDOW_SECONDS: "5",
              },
            },
          }),
        ],
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "integration",
          include: [
            "test/integration/**/*.test.ts",
            "test/media-server/**/*.test.ts",
            "test/bridge/**/*.test.ts",
            "test/web/**/*.test.ts",
            CONFORMANCE,
            "test/conformance/recorder.test.ts",
          ],
          exclude: [...configDefaults.exclude, KMS_ONLY],
          environment: "node",
          // Real servers start in these tests; run files one at a time so two
          // cores are not oversubscribed and ports do not collide.
          fileParallelism: false,
          testTimeout: 60_000,
          // A hook may start servers and Chromium (two launch attempts of 60 s at worst).
          hookTimeout: 240_000,
        },
      },
      {
        test: {
          name: "integration-kms",
          include: [...MEDIA_INTEGRATION, "test/integration/**/*.kms.test.ts"],
          env: KMS_ENV,
          environment: "node",
          fileParallelism: false,
          testTimeout: 60_000,
          // A hook may start servers and Chromium (two launch attempts of 60 s at worst).
          hookTimeout: 240_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          exclude: [...configDefaults.exclude, KMS_ONLY],
          environment: "node",
          // Real Chromium pages against the whole stack: one file at a time.
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          name: "e2e-kms",
          include: [...MEDIA_E2E, "test/e2e/**/*.kms.test.ts"],
          env: KMS_ENV,
          environment: "node",
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
