/**
 * `npm start`: runs the whole system locally — the worker (wrangler dev), the
 * embedded media server and a media bridge — and prints the URL to open once
 * the bridge has registered. With KMS_URIS set, the bridge uses those real
 * Kurento Media Servers instead of the embedded one. Ctrl-C stops everything.
 *
 * Environment: PORT (worker, default 8787), KMS_PORT (embedded media server,
 * default 8888), KMS_URIS, every worker option (worker/options.ts:
 * ADMIN_TOKEN, AUTH_REGEX, …; ADMIN_TOKEN and BRIDGE_SECRET are random per run
 * when unset) and any bridge variable (KMS_LIMIT, REQUEST_TIMEOUT_MS, HAT_*,
 * LOG_LEVEL). Secrets reach the worker through a private file, never a
 * command line. KMS_TOKEN (the media server's shared token) is random per
 * run when unset and goes to the in-process media server and bridge as an
 * option; with KMS_URIS, a set KMS_TOKEN is sent to those servers.
 */
import { randomBytes } from "node:crypto";
import { WORKER_OPTIONS } from "../worker/options.ts";
import { startSystem } from "./system.ts";

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isInteger(value) || value <= 0 || value > 65535) {
    console.error(`${name} must be a TCP port number, got '${raw}'`);
    process.exit(2);
  }
  return value;
}

const kmsUris = (process.env.KMS_URIS ?? "")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
const bridgeEnv: Record<string, string> = {};
for (const key of [
  "KMS_LIMIT",
  "REQUEST_TIMEOUT_MS",
  "HAT_URL",
  "HAT_OFFSET_X",
  "HAT_OFFSET_Y",
  "HAT_WIDTH",
  "HAT_HEIGHT",
  "LOG_LEVEL",
]) {
  const value = process.env[key];
  if (value) bridgeEnv[key] = value;
}

const workerVars: Record<string, string> = {};
for (const key of WORKER_OPTIONS) {
  const value = process.env[key];
  if (value !== undefined && value !== "") workerVars[key] = value;
}
const generatedAdminToken = workerVars.ADMIN_TOKEN === undefined;
if (generatedAdminToken) workerVars.ADMIN_TOKEN = randomBytes(24).toString("base64url");

// Random per run unless given: the embedded media server then refuses any client but this bridge.
const kmsToken =
  process.env.KMS_TOKEN?.trim() || (kmsUris.length > 0 ? undefined : randomBytes(24).toString("base64url"));

let system: Awaited<ReturnType<typeof startSystem>>;
try {
  system = await startSystem({
    vars: workerVars,
    port: port("PORT", 8787),
    kmsPort: port("KMS_PORT", 8888),
    kmsUris,
    ...(kmsToken ? { kmsToken } : {}),
    bridgeEnv,
    persistTo: ".wrangler/state",
    inheritOutput: true,
  });
} catch (error) {
  console.error(`Could not start the system: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

const media = system.mediaServer
  ? `embedded media server ${system.mediaServer.url}, KMS_TOKEN required (random per run unless set)`
  : system.kms
    ? `Kurento Media Server from KMS_HOME at ${system.mediaUrl}`
    : `KMS ${kmsUris.join(", ")}`;
console.log(
  `\nRoom service ready: open ${system.url}/  (${media}; bridge health ${system.bridge.httpUrl}/health; Ctrl-C to stop)`,
);
if (generatedAdminToken) {
  console.log(`Admin token for this run (set ADMIN_TOKEN to choose one): ${workerVars.ADMIN_TOKEN}`);
}
console.log("");

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await system.stop();
  process.exit(0);
}
process.on("SIGINT", () => void shutdown());
process.on("SIGTERM", () => void shutdown());
