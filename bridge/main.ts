/**
 * `npm run bridge`: the media bridge as a long-lived service, configured by
 * the environment (docs/bridge.md). Exit codes: 0 after SIGINT/SIGTERM,
 * 2 for a bad configuration, 1 if it cannot start.
 *
 * Importing this module only re-exports `startBridge`; it runs when it is
 * the entry point.
 */
import { fileURLToPath } from "node:url";
import { type BridgeConfig, ConfigError, loadConfig } from "./config.ts";
import { createLogger } from "./log.ts";
import { type BridgeHandle, startBridge } from "./bridge.ts";

export { startBridge, type BridgeHandle, type BridgeOptions, type BridgeStats } from "./bridge.ts";
export { loadConfig, ConfigError, type BridgeConfig } from "./config.ts";

async function main(): Promise<void> {
  let config: BridgeConfig;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\nSee docs/bridge.md for every variable.\n`);
      process.exit(2);
    }
    throw error;
  }
  const log = createLogger({ level: config.logLevel });
  // A stray exception must not take the bridge down silently.
  process.on("unhandledRejection", (reason) =>
    log.error("unhandled promise rejection", { error: reason instanceof Error ? reason : String(reason) }),
  );
  let bridge: BridgeHandle;
  try {
    bridge = await startBridge(config, { logger: log });
  } catch (error) {
    log.error("the bridge could not start", { error: error instanceof Error ? error : String(error) });
    process.exit(1);
  }
  process.stdout.write(
    `media bridge ${bridge.bridgeId}: health at ${bridge.httpUrl}/health, metrics at ${bridge.httpUrl}/metrics\n`,
  );
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info("signal received", { signal });
    const force = setTimeout(() => process.exit(0), 8000);
    force.unref();
    void bridge.stop().finally(() => process.exit(0));
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
