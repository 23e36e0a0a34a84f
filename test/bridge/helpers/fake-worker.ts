/**
 * A small `ws` server that plays the worker's part for the bridge's links:
 * `/bridge/control` (BridgePool) and `/bridge/rooms/:room` (Room DO). Like
 * the worker, it checks the bridge token *before* accepting the upgrade
 * (401 otherwise) and refuses a replayed nonce. Each accepted socket is an
 * RpcPeer so the tests speak JSON-RPC exactly as the Durable Objects will.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import { CONTROL_AUDIENCE, roomAudience, verifyBridgeToken } from "../../../protocol/tokens/bridge-token.ts";
import { RpcPeer } from "../../../protocol/rpc-peer.ts";

export interface Received {
  readonly method: string;
  readonly params: Record<string, unknown>;
}

/** One accepted bridge socket. */
export class Link {
  readonly socket: WebSocket;
  readonly peer: RpcPeer;
  readonly kind: "control" | "room";
  readonly room: string | undefined;
  readonly bridgeId: string;
  /** Notifications and requests from the bridge, in order. */
  readonly received: Received[] = [];
  /** Raw frames the bridge sent (answers included). */
  readonly frames: string[] = [];
  closed = false;
  closeCode: number | undefined;

  constructor(
    socket: WebSocket,
    kind: "control" | "room",
    room: string | undefined,
    bridgeId: string,
    onRequest: (link: Link, method: string, params: Record<string, unknown>) => unknown,
  ) {
    this.socket = socket;
    this.kind = kind;
    this.room = room;
    this.bridgeId = bridgeId;
    this.peer = new RpcPeer(
      { send: (frame) => socket.send(frame) },
      {
        timeoutMs: 30_000,
        onNotification: (method, params) => this.record(method, params),
        onRequest: (method, params) => {
          this.record(method, params);
          return onRequest(this, method, (params ?? {}) as Record<string, unknown>);
        },
      },
    );
    socket.on("message", (data) => {
      const text = data.toString();
      this.frames.push(text);
      this.peer.receive(text);
    });
    socket.on("close", (code) => {
      this.closed = true;
      this.closeCode = code;
      this.peer.closed();
    });
  }

  private record(method: string, params: unknown): void {
    this.received.push({ method, params: (params ?? {}) as Record<string, unknown> });
  }

  request<T = Record<string, unknown>>(method: string, params: unknown = {}): Promise<T> {
    return this.peer.request<T>(method, params);
  }

  /** Sends a raw frame (malformed-frame tests). */
  sendRaw(frame: string | Buffer): void {
    this.socket.send(frame);
  }

  /** Waits until `predicate` returns something truthy (polls every 20 ms). */
  async until<T>(predicate: () => T | undefined | false, timeoutMs: number, what: string | (() => string)): Promise<T> {
    return waitUntil(predicate, timeoutMs, what);
  }

  notifications(method: string): Array<Record<string, unknown>> {
    return this.received.filter((entry) => entry.method === method).map((entry) => entry.params);
  }

  close(code = 1000, reason = ""): void {
    this.socket.close(code, reason);
  }

  terminate(): void {
    this.socket.terminate();
  }
}

export interface Refusal {
  readonly path: string;
  readonly status: number;
  readonly reason: string;
}

const STATUS_TEXT: Record<number, string> = { 401: "Unauthorized", 404: "Not Found", 409: "Conflict" };

export class FakeWorker {
  readonly secret: string;
  readonly http: Server;
  readonly wss: WebSocketServer;
  readonly links: Link[] = [];
  readonly refusals: Refusal[] = [];
  /** Nonces already used (single-use, as the Durable Objects enforce). */
  readonly nonces = new Set<string>();
  /** The next N upgrades get 401 whatever their token. */
  refuseNext = 0;
  /** Room links to these rooms get 409, as a room assigned to another bridge answers. */
  readonly servedElsewhere = new Set<string>();
  /** Answer to `register` (default: accepted). */
  onRegister: (params: Record<string, unknown>) => unknown = () => ({ accepted: true });
  /** Plain HTTP requests (the recordings' upload API); 404 when unset. */
  onHttp: ((request: IncomingMessage, response: ServerResponse) => void) | undefined;
  url = "";

  private constructor(secret: string) {
    this.secret = secret;
    this.http = createServer((request, response) => {
      if (this.onHttp) return this.onHttp(request, response);
      response.writeHead(404);
      response.end();
    });
    this.wss = new WebSocketServer({ noServer: true });
    this.http.on("upgrade", (request, socket, head) => void this.upgrade(request, socket, head));
  }

  static async start(secret: string, port = 0): Promise<FakeWorker> {
    const worker = new FakeWorker(secret);
    await new Promise<void>((resolve) => worker.http.listen(port, "127.0.0.1", resolve));
    worker.url = `http://127.0.0.1:${(worker.http.address() as AddressInfo).port}`;
    return worker;
  }

  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  private refuse(socket: Duplex, path: string, status: number, reason: string): void {
    this.refusals.push({ path, status, reason });
    const body = JSON.stringify({ error: reason });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Refused"}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }

  private async upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    let kind: "control" | "room";
    let room: string | undefined;
    if (path === "/bridge/control") kind = "control";
    else if (path.startsWith("/bridge/rooms/")) {
      kind = "room";
      room = decodeURIComponent(path.slice("/bridge/rooms/".length));
    } else return this.refuse(socket, path, 404, "unknown path");
    if (this.refuseNext > 0) {
      this.refuseNext -= 1;
      return this.refuse(socket, path, 401, "refused by the test");
    }
    if (room !== undefined && this.servedElsewhere.has(room)) {
      return this.refuse(socket, path, 409, `room '${room}' is served by media bridge 'another-bridge'`);
    }
    const header = request.headers.authorization ?? "";
    const token = header.startsWith("Bearer ") ? header.slice(7) : "";
    const check = await verifyBridgeToken(
      this.secret,
      token,
      kind === "control" ? CONTROL_AUDIENCE : roomAudience(room!),
    );
    if (!check.ok) return this.refuse(socket, path, 401, check.reason);
    if (this.nonces.has(check.claims.nonce)) return this.refuse(socket, path, 401, "replayed token");
    this.nonces.add(check.claims.nonce);
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      const link = new Link(ws, kind, room, check.claims.bid, (from, method, params) =>
        this.answer(from, method, params),
      );
      this.links.push(link);
    });
  }

  private answer(_link: Link, method: string, params: Record<string, unknown>): unknown {
    if (method === "register") return this.onRegister(params);
    throw new Error(`the test worker does not handle ${method}`);
  }

  controls(): Link[] {
    return this.links.filter((link) => link.kind === "control");
  }

  roomLinks(room: string): Link[] {
    return this.links.filter((link) => link.kind === "room" && link.room === room);
  }

  /** The newest open control link that has registered. */
  async registeredControl(timeoutMs = 30_000, after = 0): Promise<Link> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const link = this.controls()
        .slice(after)
        .find((candidate) => !candidate.closed && candidate.received.some((entry) => entry.method === "register"));
      if (link) return link;
      if (Date.now() > deadline)
        throw new Error(`Timed out after ${timeoutMs} ms waiting for a registered control link`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** The newest open link for `room`, after the first `after` ones. */
  async roomLink(room: string, timeoutMs = 30_000, after = 0): Promise<Link> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const link = this.roomLinks(room)
        .slice(after)
        .find((candidate) => !candidate.closed);
      if (link) return link;
      if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for a link to room ${room}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Drops every socket (a worker restart / network loss). */
  dropAll(): void {
    for (const link of this.links) if (!link.closed) link.terminate();
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}

/** Polls `predicate` every 20 ms until it returns something truthy. */
export async function waitUntil<T>(
  predicate: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  what: string | (() => string),
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline)
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${typeof what === "string" ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
