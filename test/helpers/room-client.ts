/**
 * A Node test client for the Room protocol: a `ws` socket, the project's
 * RpcPeer for requests, and a queue of notifications that tests can await in
 * order.
 */
import WebSocket from "ws";
import { RpcPeer, RpcRequestError } from "../../protocol/rpc-peer.ts";

export interface ReceivedNotification {
  readonly method: string;
  readonly params: Record<string, unknown>;
}

export class RoomTestClient {
  readonly ws: WebSocket;
  readonly peer: RpcPeer;
  readonly notifications: ReceivedNotification[] = [];
  /** Every raw frame received, in order (for ordering assertions). */
  readonly frames: string[] = [];
  readonly waiters: Array<() => void> = [];
  closeEvent: { code: number; reason: string } | null = null;
  readonly closedPromise: Promise<{ code: number; reason: string }>;

  private constructor(ws: WebSocket, timeoutMs: number) {
    this.ws = ws;
    this.peer = new RpcPeer(
      { send: (frame) => ws.send(frame) },
      {
        timeoutMs,
        onNotification: (method, params) => {
          this.notifications.push({ method, params: (params ?? {}) as Record<string, unknown> });
          this.wake();
        },
      },
    );
    ws.on("message", (data) => {
      const text = data.toString();
      this.frames.push(text);
      this.peer.receive(text);
      this.wake();
    });
    // A late socket error (after open) must not become an unhandled 'error' event; the close follows.
    ws.on("error", () => undefined);
    this.closedPromise = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        this.closeEvent = { code, reason: reason.toString() };
        this.peer.closed();
        this.wake();
        resolve(this.closeEvent);
      });
    });
  }

  static connect(url: string, timeoutMs = 10_000): Promise<RoomTestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const client = new RoomTestClient(ws, timeoutMs);
      ws.once("open", () => resolve(client));
      ws.once("error", reject);
    });
  }

  request<T = Record<string, unknown>>(method: string, params?: unknown): Promise<T> {
    return this.peer.request<T>(method, params);
  }

  /** The error a request fails with (fails the test if it succeeds). */
  async requestError(method: string, params?: unknown): Promise<RpcRequestError> {
    try {
      const result = await this.peer.request(method, params);
      throw new Error(`${method} succeeded unexpectedly: ${JSON.stringify(result)}`);
    } catch (error) {
      if (error instanceof RpcRequestError) return error;
      throw error;
    }
  }

  sendRaw(frame: string | Buffer): void {
    this.ws.send(frame);
  }

  /** Waits for the next frame that is a response to nothing (e.g. an error with id null). */
  async nextFrame(
    predicate: (frame: Record<string, unknown>) => boolean,
    timeoutMs = 20_000,
  ): Promise<Record<string, unknown>> {
    let seen = 0;
    return this.waitFor(
      () => {
        for (; seen < this.frames.length; seen++) {
          const frame = JSON.parse(this.frames[seen] as string) as Record<string, unknown>;
          if (predicate(frame)) return frame;
        }
        return undefined;
      },
      timeoutMs,
      "frame",
    );
  }

  /** Removes and returns the first queued notification of `method`, waiting for it if needed. */
  async next(method: string, timeoutMs = 20_000): Promise<Record<string, unknown>> {
    return this.waitFor(
      () => {
        const index = this.notifications.findIndex((n) => n.method === method);
        if (index < 0) return undefined;
        const [found] = this.notifications.splice(index, 1);
        return found?.params;
      },
      timeoutMs,
      `notification ${method}`,
    );
  }

  /** The first notification `method` whose params satisfy `match` (earlier ones of that method stay queued). */
  async nextWhere(
    method: string,
    match: (params: Record<string, unknown>) => boolean,
    timeoutMs = 20_000,
  ): Promise<Record<string, unknown>> {
    return this.waitFor(
      () => {
        const index = this.notifications.findIndex((n) => n.method === method && match(n.params));
        if (index < 0) return undefined;
        const [found] = this.notifications.splice(index, 1);
        return found?.params;
      },
      timeoutMs,
      `notification ${method} matching ${match.toString()}`,
    );
  }

  count(method: string): number {
    return this.notifications.filter((n) => n.method === method).length;
  }

  waitFor<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const value = probe();
        if (value === undefined) return false;
        clearTimeout(timer);
        resolve(value);
        return true;
      };
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(onWake);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const onWake = (): void => {
        if (!check()) this.waiters.push(onWake);
      };
      onWake();
    });
  }

  wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  closed(): Promise<{ code: number; reason: string }> {
    return this.closedPromise;
  }

  /** Waits for the close, failing after `timeoutMs`. */
  closedWithin(timeoutMs = 20_000): Promise<{ code: number; reason: string }> {
    return this.waitFor(() => this.closeEvent ?? undefined, timeoutMs, "the socket to close");
  }

  close(): void {
    this.ws.close();
  }

  /** Drops the connection without a close handshake (a lost network). */
  terminate(): void {
    this.ws.terminate();
  }
}
