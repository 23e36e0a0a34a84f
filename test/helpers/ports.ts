import { createServer } from "node:net";

/**
 * A TCP port that was free a moment ago on `host` (the OS picks it). Another
 * process may bind it before the caller does: prefer a server that listens on
 * port 0 and reports its port (the embedded media server, the bridge's HTTP
 * server and the test servers all do), or start through `onFreePort`, which
 * tries another port when this one was taken.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error("could not determine a free port"))));
    });
  });
}

/** Whether `error` says the port was taken (EADDRINUSE), from Node's own error or a child process's message. */
export function isAddressInUse(error: unknown): boolean {
  if (typeof error === "object" && error !== null && (error as { code?: unknown }).code === "EADDRINUSE") return true;
  return /EADDRINUSE|address already in use/i.test(error instanceof Error ? error.message : String(error));
}

/**
 * Starts something that must be told its port before it listens (a child
 * process, wrangler dev) on a port that was free a moment ago; when another
 * process took that port meanwhile (`start` rejects with EADDRINUSE), tries
 * again on another one, up to `attempts` times. Any other failure is thrown
 * at once.
 */
export async function onFreePort<T>(
  start: (port: number) => Promise<T>,
  options: { attempts?: number; host?: string } = {},
): Promise<T> {
  const attempts = options.attempts ?? 5;
  let last: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const port = await freePort(options.host);
    try {
      return await start(port);
    } catch (error) {
      if (!isAddressInUse(error)) throw error;
      last = error;
    }
  }
  throw new Error(`no free port after ${attempts} attempts: ${last instanceof Error ? last.message : String(last)}`);
}
