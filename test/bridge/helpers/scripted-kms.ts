/**
 * A scripted stand-in for Kurento Media Server, speaking just enough of the
 * Kurento protocol for the real kurento-client (shapes from
 * shared/reference/kurento-client-transcript.txt). It records every request,
 * can advertise FaceOverlayFilter (which the embedded media server cannot),
 * can stay silent on chosen operations, and can raise `Error` events: the
 * cases the embedded server cannot produce. Its RecorderEndpoint "records"
 * by writing `recordedBytes` to the file of its `file://` URI on `record`
 * (as KMS does once media flows) and answers `stopAndWait` with `Stopped`.
 */
import { randomUUID } from "node:crypto";
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { AddressInfo } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";

export interface KmsRequest {
  readonly method: string;
  readonly params: Record<string, unknown>;
  /** When it arrived (epoch ms). */
  readonly at: number;
}

export interface ScriptedKmsOptions {
  /** Factories of the `filters` module (e.g. ["FaceOverlayFilter"]). */
  readonly filterFactories?: readonly string[];
}

const ANSWER = [
  "v=0",
  "o=- 1 1 IN IP4 127.0.0.1",
  "s=scripted",
  "t=0 0",
  "m=video 9 UDP/TLS/RTP/SAVPF 96",
  "a=recvonly",
  "",
].join("\r\n");

export class ScriptedKms {
  readonly wss: WebSocketServer;
  readonly requests: KmsRequest[] = [];
  /** Live objects by id → type. */
  readonly objects = new Map<string, string>();
  /** `invoke` operations (or other methods) that get no answer at all. */
  readonly silent = new Set<string>();
  /** Answer `unsubscribe` with an error, as a strict server might for a released object. */
  refuseUnsubscribe = false;
  /** `invoke` operations answered with this error instead. */
  readonly refuse = new Map<string, string>();
  /** `invoke` operations answered this many ms late. */
  readonly delays = new Map<string, number>();
  /** What a RecorderEndpoint writes on `record`, then saying `Recording` (null: nothing and no event, as when no media flows). */
  recordedBytes: Buffer | null = null;
  /** Constructor params of every RecorderEndpoint created, by id. */
  readonly recorders = new Map<string, Record<string, unknown>>();
  private readonly sessionId = randomUUID();
  private readonly subscriptions = new Map<string, Set<string>>();
  /** Who subscribed to `<object> <type>`: events go to those sessions only, as on KMS. */
  private readonly subscribers = new Map<string, Set<WebSocket>>();
  private readonly sockets = new Set<WebSocket>();
  private readonly filterFactories: readonly string[];

  private constructor(wss: WebSocketServer, options: ScriptedKmsOptions) {
    this.wss = wss;
    this.filterFactories = options.filterFactories ?? [];
    wss.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      socket.on("message", (data) => this.handle(socket, data.toString()));
    });
  }

  static async start(options: ScriptedKmsOptions = {}): Promise<ScriptedKms> {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/kurento" });
    await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
    return new ScriptedKms(wss, options);
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/kurento`;
  }

  idsOf(type: string): string[] {
    return [...this.objects].filter(([, kind]) => kind === type).map(([id]) => id);
  }

  invocations(operation: string): Array<Record<string, unknown>> {
    return this.requests
      .filter((request) => request.method === "invoke" && request.params.operation === operation)
      .map((request) => request.params);
  }

  /** Whether someone subscribed to `type` events of `object`. */
  subscribed(object: string, type: string): boolean {
    return this.subscriptions.get(object)?.has(type) === true;
  }

  /** Raises a KMS `Error` event on `object` (to the sessions subscribed to it). */
  raiseError(object: string, description: string, errorCode = 999): void {
    if (!this.subscriptions.get(object)?.has("Error")) throw new Error(`nobody subscribed to Error on ${object}`);
    this.raiseEvent(object, "Error", { description, errorCode });
  }

  /** Sends the event `type` of `object` to every session, if someone subscribed to it. */
  raiseEvent(object: string, type: string, data: Record<string, unknown> = {}): boolean {
    if (!this.subscriptions.get(object)?.has(type)) return false;
    const frame = JSON.stringify({
      jsonrpc: "2.0",
      method: "onEvent",
      params: {
        value: {
          object,
          type,
          data: { source: object, type, tags: [], timestamp: String(Date.now()), ...data },
        },
      },
    });
    for (const socket of this.subscribers.get(`${object} ${type}`) ?? []) socket.send(frame);
    return true;
  }

  private handle(socket: WebSocket, text: string): void {
    const message = JSON.parse(text) as { id?: number; method?: string; params?: Record<string, unknown> };
    if (!message.method) return;
    const params = message.params ?? {};
    this.requests.push({ method: message.method, params, at: Date.now() });
    const key = message.method === "invoke" ? String(params.operation) : message.method;
    if (this.silent.has(key) || message.id === undefined) return;
    const delay = message.method === "invoke" ? (this.delays.get(key) ?? 0) : 0;
    const answer = (frame: string): void => {
      if (delay > 0) setTimeout(() => socket.send(frame), delay);
      else socket.send(frame);
    };
    const reply = (result: Record<string, unknown>) =>
      answer(JSON.stringify({ jsonrpc: "2.0", id: message.id, result: { ...result, sessionId: this.sessionId } }));
    const fail = (code: number, text: string) =>
      socket.send(
        JSON.stringify({ jsonrpc: "2.0", id: message.id, error: { code, message: text, data: { type: "SCRIPTED" } } }),
      );
    switch (message.method) {
      case "ping":
        return void socket.send(JSON.stringify({ jsonrpc: "2.0", id: message.id, result: { value: "pong" } }));
      case "connect":
        return reply({});
      case "describe":
        if (params.object === "manager_ServerManager")
          return reply({
            hierarchy: ["kurento.MediaObject"],
            qualifiedType: "kurento.ServerManager",
            type: "ServerManager",
          });
        return fail(40101, `unknown object ${String(params.object)}`);
      case "create": {
        const type = String(params.type);
        const constructorParams = (params.constructorParams ?? {}) as Record<string, unknown>;
        if (type !== "MediaPipeline" && !this.objects.has(String(constructorParams.mediaPipeline)))
          return fail(40101, "no such pipeline");
        if (type === "FaceOverlayFilter" && !this.filterFactories.includes("FaceOverlayFilter"))
          return fail(40100, "FaceOverlayFilter: no such factory");
        const id =
          type === "MediaPipeline"
            ? `${randomUUID()}_kurento.MediaPipeline`
            : `${String(constructorParams.mediaPipeline)}/${randomUUID()}_kurento.${type}`;
        this.objects.set(id, type);
        if (type === "RecorderEndpoint") this.recorders.set(id, constructorParams);
        return reply({ value: id });
      }
      case "subscribe": {
        const object = String(params.object);
        if (!this.objects.has(object)) return fail(40101, `unknown object ${object}`);
        let types = this.subscriptions.get(object);
        if (!types) {
          types = new Set();
          this.subscriptions.set(object, types);
        }
        types.add(String(params.type));
        const key = `${object} ${String(params.type)}`;
        this.subscribers.set(key, (this.subscribers.get(key) ?? new Set()).add(socket));
        return reply({ value: randomUUID() });
      }
      case "unsubscribe":
        if (this.refuseUnsubscribe) return fail(40101, `unsubscribe: unknown object ${String(params.object)}`);
        return reply({});
      case "release": {
        const object = String(params.object);
        if (!this.objects.has(object)) return fail(40101, `unknown object ${object}`);
        for (const id of [...this.objects.keys()])
          if (id === object || id.startsWith(`${object}/`)) this.objects.delete(id);
        return reply({});
      }
      case "invoke": {
        const object = String(params.object);
        if (object === "manager_ServerManager" && params.operation === "getInfo") {
          const module = (name: string, factories: readonly string[]) => ({
            version: "7.2.0",
            name,
            generationTime: "scripted",
            factories: [...factories],
          });
          return reply({
            value: {
              version: "7.2.0",
              modules: [
                module("core", ["MediaPipeline", "PassThrough"]),
                module("elements", ["WebRtcEndpoint", "RecorderEndpoint"]),
                module("filters", this.filterFactories),
              ],
              type: "KMS",
              capabilities: ["transactions"],
            },
          });
        }
        if (!this.objects.has(object)) return fail(40101, `unknown object ${object}`);
        const refusal = this.refuse.get(String(params.operation));
        if (refusal !== undefined) return fail(40000, refusal);
        if (params.operation === "processOffer") return reply({ value: ANSWER });
        if (params.operation === "record") {
          reply({});
          const recorded = this.recordedBytes;
          if (recorded) {
            const path = fileURLToPath(String(this.recorders.get(object)?.uri));
            mkdirSync(dirname(path), { recursive: true });
            appendFileSync(path, recorded);
            this.raiseEvent(object, "Recording");
          }
          return;
        }
        if (params.operation === "stopAndWait") {
          // As KMS: `Stopped`, then the answer, once the file is complete (`delays` makes that take a while).
          const done = () => {
            this.raiseEvent(object, "Stopped");
            socket.send(JSON.stringify({ jsonrpc: "2.0", id: message.id, result: { sessionId: this.sessionId } }));
          };
          if (delay > 0) setTimeout(done, delay);
          else done();
          return;
        }
        return reply({});
      }
      default:
        return fail(-32601, `scripted KMS: no ${message.method}`);
    }
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
