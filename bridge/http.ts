/**
 * The bridge's only listening port, for operators: `GET /health` (JSON) and
 * `GET /metrics` (Prometheus text). Bind it to 127.0.0.1 (the default) or a
 * private interface; media commands never come in here (the bridge dials out).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "./log.ts";

export interface HealthBody {
  readonly status: "ok" | "degraded";
  readonly bridgeId: string;
  readonly controlConnected: boolean;
  readonly registered: boolean;
  readonly rooms: number;
  readonly pipelines: number;
  readonly endpoints: number;
  readonly kms: ReadonlyArray<{
    readonly uri: string;
    readonly connected: boolean;
    readonly state: string;
    readonly pipelines: number;
    readonly limit: number;
    readonly filters: boolean;
  }>;
}

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly health: () => HealthBody;
  readonly metrics: () => string;
  readonly log: Logger;
}

export interface HttpServerHandle {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServerHandle> {
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    try {
      if (request.method === "GET" && path === "/health") {
        const body = options.health();
        response.writeHead(body.status === "ok" ? 200 : 503, {
          "content-type": "application/json",
          "cache-control": "no-store",
        });
        response.end(JSON.stringify(body));
        return;
      }
      if (request.method === "GET" && path === "/metrics") {
        response.writeHead(200, {
          "content-type": "text/plain; version=0.0.4; charset=utf-8",
          "cache-control": "no-store",
        });
        response.end(options.metrics());
        return;
      }
      response.writeHead(404, { "content-type": "application/json" });
      response.end(
        JSON.stringify({
          error: `Not found: ${request.method} ${path} (this is the media bridge: GET /health, GET /metrics)`,
        }),
      );
    } catch (error) {
      options.log.error("health/metrics request failed", { path, error });
      response.writeHead(500, { "content-type": "application/json" });
      response.end(JSON.stringify({ error: "internal error" }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (error) => options.log.error("health/metrics server error", { error }));
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
