import { createServer } from "node:net";

/** A TCP port that was free a moment ago on `host` (the OS picks it). Prefer listening on port 0 directly where a server allows it. */
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
