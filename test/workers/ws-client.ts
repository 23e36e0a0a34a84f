/** A WebSocket client living in the test's isolate, speaking JSON-RPC. */
import { SELF } from "cloudflare:test";
import { expect } from "vitest";

export interface Frame {
  id?: number | string | null;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}

/** A WebSocket client living in the test's isolate. */
export class Client {
  readonly frames: Frame[] = [];
  readonly waiters: Array<() => void> = [];
  closeCode: number | null = null;
  closeReason: string | null = null;
  nextId = 1;
  readonly ws: WebSocket;

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.accept();
    ws.addEventListener("message", (event) => {
      this.frames.push(JSON.parse(event.data as string) as Frame);
      for (const w of this.waiters.splice(0)) w();
    });
    ws.addEventListener("close", (event) => {
      this.closeCode = event.code;
      this.closeReason = event.reason;
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(path: string, headers: Record<string, string> = {}): Promise<Client> {
    const response = await SELF.fetch(`https://example.com${path}`, { headers: { Upgrade: "websocket", ...headers } });
    expect(response.status).toBe(101);
    const ws = response.webSocket;
    if (!ws) throw new Error("no WebSocket in the upgrade response");
    return new Client(ws);
  }

  async waitFor(predicate: (f: Frame) => boolean, what: string, timeoutMs = 20_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.frames)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  async request(method: string, params: Record<string, unknown> = {}): Promise<Frame> {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ jsonrpc: "2.0", method, params, id }));
    return this.waitFor((f) => f.id === id && f.method === undefined, `the answer to ${method}`);
  }

  /**
   * Waits for an incoming request (a frame with both method and id) not taken yet, e.g. a media command
   * to a bridge. Frames, not ids, are taken: a room object rebuilt after eviction numbers its requests
   * from 1 again.
   */
  async incoming(method: string, timeoutMs?: number): Promise<Frame & { id: number | string }> {
    const frame = await this.waitFor(
      (f) => f.method === method && f.id !== undefined && f.id !== null && !this.taken.has(f),
      `request ${method}`,
      timeoutMs,
    );
    this.taken.add(frame);
    return frame as Frame & { id: number | string };
  }

  /** Incoming requests already handed out by `incoming` (or marked by a helper). */
  readonly taken = new Set<Frame>();

  reply(id: number | string, result: unknown): void {
    this.ws.send(JSON.stringify({ jsonrpc: "2.0", id, result }));
  }

  replyError(id: number | string, code: number, message: string): void {
    this.ws.send(JSON.stringify({ jsonrpc: "2.0", id, error: { code, message } }));
  }

  notify(method: string, params: Record<string, unknown>): void {
    this.ws.send(JSON.stringify({ jsonrpc: "2.0", method, params }));
  }

  async closed(timeoutMs = 20_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.closeCode === null) {
      if (Date.now() > deadline) throw new Error("socket did not close");
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.closeCode;
  }
}
