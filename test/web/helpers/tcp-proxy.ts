/**
 * A TCP proxy on 127.0.0.1 in front of the worker: lets a test cut every
 * connection (a network drop), freeze them (a half-open connection that
 * carries nothing and never closes) or refuse new ones (server unreachable).
 * Only the sockets this proxy accepted and opened are touched.
 *
 * A frozen connection stays half-open on the client's side even if the
 * server gives up on it: the server's close is not passed on (as a FIN lost
 * with the rest of the traffic), so only the client itself can notice.
 */
import { createServer, type Server, type Socket, connect } from "node:net";
import type { AddressInfo } from "node:net";

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  frozen: boolean;
}

export class TcpProxy {
  readonly server: Server;
  readonly targetPort: number;
  readonly pairs = new Set<Pair>();
  refusing = false;
  accepted = 0;
  port = 0;

  private constructor(server: Server, targetPort: number) {
    this.server = server;
    this.targetPort = targetPort;
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, targetPort);
    server.on("connection", (client) => proxy.accept(client));
    // Port 0: the OS picks a free port as it binds (nothing to race), and we read it back.
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    proxy.port = (server.address() as AddressInfo).port;
    return proxy;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  accept(client: Socket): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    this.accepted += 1;
    const upstream = connect(this.targetPort, "127.0.0.1");
    const pair: Pair = { client, upstream, frozen: false };
    this.pairs.add(pair);
    client.on("data", (chunk) => {
      if (!pair.frozen) upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      if (!pair.frozen) client.write(chunk);
    });
    const end = (): void => {
      if (!this.pairs.delete(pair)) return;
      client.destroy();
      upstream.destroy();
    };
    // Frozen: the server side going away is not passed on; the client's own close ends the pair.
    const upstreamEnded = (): void => {
      if (pair.frozen) upstream.destroy();
      else end();
    };
    client.on("close", end);
    upstream.on("close", upstreamEnded);
    client.on("error", end);
    upstream.on("error", upstreamEnded);
  }

  /** Cuts every open connection at once (both sides see a reset). */
  dropAll(): number {
    const count = this.pairs.size;
    for (const pair of [...this.pairs]) {
      this.pairs.delete(pair);
      for (const socket of [pair.client, pair.upstream]) if (!socket.destroyed) socket.resetAndDestroy();
    }
    return count;
  }

  /** Open connections stop carrying data in both directions, without closing (see above). */
  freezeAll(): number {
    for (const pair of this.pairs) pair.frozen = true;
    return this.pairs.size;
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
