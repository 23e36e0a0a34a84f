/**
 * `npm start`: runs the whole system locally and prints the URL to open.
 * PORT (default 8787) is the worker's port. Ctrl-C stops everything.
 */
import { startWranglerDev } from "./wrangler-dev.ts";

const port = Number(process.env.PORT ?? 8787);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`PORT must be a TCP port number, got '${process.env.PORT}'`);
  process.exit(2);
}

const worker = await startWranglerDev({ port, persistTo: ".wrangler/state", inheritOutput: true });
console.log(`\nRoom service ready: open ${worker.url}/  (Ctrl-C to stop)\n`);

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await worker.stop();
  process.exit(0);
}
process.on("SIGINT", () => void shutdown());
process.on("SIGTERM", () => void shutdown());
