import { createRequire } from "node:module";
import type WebSocketType from "ws";

// vitest resolves `import "ws"` to ws's "browser" export (browser.js, which only throws); load the Node build.
const WebSocket = createRequire(import.meta.url)("ws") as typeof WebSocketType;

/** How long a reply may take before the call fails: only a guard against a hang, far above any real answer time. */
const REPLY_TIMEOUT_MS = 30_000;

export interface ReplyFrame {
  jsonrpc?: string;
  id?: number | string | null;
  result?: Record<string, unknown> & { value?: unknown; sessionId?: string };
  error?: { code: number; message: string; data?: Record<string, unknown> };
  method?: string;
  params?: Record<string, unknown>;
}

/** A bare WebSocket client for frames kurento-client would never send. Replies are read in arrival order. */
export class RawKurentoClient {
  private readonly socket: WebSocketType;
  private readonly inbox: ReplyFrame[] = [];
  private readonly waiters: Array<(frame: ReplyFrame) => void> = [];
  private nextId = 1;
  readonly events: ReplyFrame[] = [];

  private constructor(socket: WebSocketType) {
    this.socket = socket;
    socket.on("message", (data) => {
      const frame = JSON.parse(String(data)) as ReplyFrame;
      if (frame.method === "onEvent") {
        this.events.push(frame);
        return;
      }
      const waiter = this.waiters.shift();
      if (waiter) waiter(frame);
      else this.inbox.push(frame);
    });
  }

  static async connect(url: string): Promise<RawKurentoClient> {
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    return new RawKurentoClient(socket);
  }

  /** Sends text as is and returns the next reply. */
  async sendRaw(text: string, timeoutMs = REPLY_TIMEOUT_MS): Promise<ReplyFrame> {
    this.socket.send(text);
    return this.nextReply(timeoutMs);
  }

  async call(method: string, params?: Record<string, unknown>): Promise<ReplyFrame> {
    const id = this.nextId++;
    const reply = await this.sendRaw(JSON.stringify({ jsonrpc: "2.0", id, method, ...(params ? { params } : {}) }));
    if (reply.id !== id)
      throw new Error(`reply for ${String(reply.id)} while waiting for ${id}: ${JSON.stringify(reply)}`);
    return reply;
  }

  /** Sends a request and does not wait for its reply; returns its id. */
  fire(method: string, params: Record<string, unknown>): number {
    const id = this.nextId++;
    this.socket.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    return id;
  }

  /** The next `count` replies, in arrival order. */
  async replies(count: number, timeoutMs = REPLY_TIMEOUT_MS): Promise<ReplyFrame[]> {
    const frames: ReplyFrame[] = [];
    while (frames.length < count) frames.push(await this.nextReply(timeoutMs));
    return frames;
  }

  async value(method: string, params?: Record<string, unknown>): Promise<unknown> {
    const reply = await this.call(method, params);
    if (reply.error) throw new Error(`${method} failed: ${reply.error.code} ${reply.error.message}`);
    return reply.result?.value;
  }

  close(): Promise<void> {
    if (this.socket.readyState === this.socket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once("close", () => resolve());
      this.socket.close();
    });
  }

  private nextReply(timeoutMs: number): Promise<ReplyFrame> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push((frame) => {
        clearTimeout(timer);
        resolve(frame);
      });
    });
  }
}
