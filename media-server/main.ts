import { mediaServerOptionsFromEnv, startMediaServer } from "./index.ts";

// `npm run media-server`: the embedded server alone, configured by KMS_* variables.
const options = mediaServerOptionsFromEnv(process.env);
const server = await startMediaServer(options);
// The token itself is never printed; `server.url` carries none.
const origins = options.allowedOrigins?.length ? options.allowedOrigins.join(", ") : "none";
process.stderr.write(
  `[media-server] Kurento protocol on ${server.url} (health: http://${server.host}:${server.port}/health; ` +
    `token ${options.token ? "required" : "not required"}; browser origins allowed: ${origins})\n`,
);

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`[media-server] ${signal}: releasing ${server.stats().objects} objects and stopping\n`);
  server.close().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`[media-server] error while stopping: ${String(error)}\n`);
      process.exit(1);
    },
  );
};
process.on("SIGINT", () => stop("SIGINT"));
process.on("SIGTERM", () => stop("SIGTERM"));
