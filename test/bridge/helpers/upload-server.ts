/**
 * A stand-in for the worker's recording upload API (protocol/recordings.ts),
 * on 127.0.0.1: multipart uploads kept in memory and assembled on
 * `complete`, `/failed` reports, the Bearer token of each recording checked.
 * Tests script faults per request (`intercept`) and read what arrived.
 * `start()` listens on its own port; `mounted()` serves through another
 * server's requests (the worker stand-in's, so WORKER_URL is one address).
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { completeUploadBody, fileFailedBody } from "../../../protocol/recordings.ts";

export interface UploadRequest {
  readonly method: string;
  readonly path: string;
  /** Body bytes received (parts: the part's size). */
  readonly bytes: number;
  readonly status: number;
}

export interface CompletedFile {
  readonly recording: string;
  readonly file: string;
  readonly uploadId: string;
  readonly data: Buffer;
  readonly body: ReturnType<typeof completeUploadBody.parse>;
}

export type Route = "create" | "part" | "complete" | "failed";

/**
 * What a test may do to a request before it is served: answer with a status
 * (and body), hold it unanswered, or let it through (undefined).
 */
export type Intercept = (
  route: Route,
  match: { recording: string; file: string; uploadId?: string; part?: number },
) => { status: number; body?: string } | "hold" | undefined;

interface Upload {
  readonly recording: string;
  readonly file: string;
  readonly parts: Map<number, { etag: string; data: Buffer }>;
}

const ROUTE =
  /^\/bridge\/recordings\/([^/]+)\/files\/([^/]+)\/(?:(failed)|uploads(?:\/([^/]+)(?:\/(complete)|\/parts\/(\d+))?)?)$/;

export class UploadServer {
  readonly requests: UploadRequest[] = [];
  readonly completed: CompletedFile[] = [];
  readonly failures: Array<{ recording: string; file: string; reason: string }> = [];
  /** Token each recording's requests must carry. */
  readonly tokens = new Map<string, string>();
  intercept: Intercept | undefined;
  /** Each part is answered this late (uploads overlap in time). */
  partDelayMs = 0;
  /** Part requests being served now, and the most there ever were at once. */
  partsInFlight = 0;
  maxPartsInFlight = 0;
  private readonly uploads = new Map<string, Upload>();
  private readonly held = new Set<ServerResponse>();
  private readonly server: Server | undefined;

  private constructor(server?: Server) {
    this.server = server;
  }

  static async start(): Promise<UploadServer> {
    let instance: UploadServer | undefined;
    const server = createServer((request, response) => instance?.serve(request, response));
    instance = new UploadServer(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return instance;
  }

  /** Without a port of its own: another server hands it requests (`serve`). */
  static mounted(): UploadServer {
    return new UploadServer();
  }

  get url(): string {
    if (!this.server) throw new Error("a mounted upload server has no URL of its own");
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  serve(request: IncomingMessage, response: ServerResponse): void {
    // A client that gives up mid-body (a bridge stopping) resets the request: nothing to answer then.
    this.handle(request, response).catch(() => response.destroy());
  }

  /** Upload ids the server knows (not completed). */
  get openUploads(): string[] {
    return [...this.uploads.keys()];
  }

  /** Forgets an open upload, as an expired or aborted one. */
  forget(uploadId: string): void {
    this.uploads.delete(uploadId);
  }

  partRequests(): UploadRequest[] {
    return this.requests.filter((request) => request.method === "PUT");
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const path = new URL(request.url ?? "/", "http://x").pathname;
    const send = (status: number, value: unknown): void => {
      this.requests.push({ method: request.method ?? "", path, bytes: body.length, status });
      response.writeHead(status, { "content-type": "application/json" });
      response.end(typeof value === "string" ? value : JSON.stringify(value));
    };
    const match = ROUTE.exec(path);
    if (!match) return send(404, { error: "no such route" });
    const [, recording = "", file = "", failed, uploadId, complete, part] = match;
    const route: Route = failed ? "failed" : complete ? "complete" : part ? "part" : "create";
    const method = { create: "POST", part: "PUT", complete: "POST", failed: "POST" }[route];
    if (request.method !== method || (route === "create" && uploadId)) return send(405, { error: "method" });
    if (request.headers.authorization !== `Bearer ${this.tokens.get(recording)}`) return send(401, { error: "token" });
    const scripted = this.intercept?.(route, {
      recording,
      file,
      ...(uploadId ? { uploadId } : {}),
      ...(part ? { part: Number(part) } : {}),
    });
    if (scripted === "hold") {
      this.held.add(response);
      return;
    }
    if (scripted) return send(scripted.status, scripted.body ?? { error: "scripted" });
    switch (route) {
      case "create": {
        const id = randomUUID();
        this.uploads.set(id, { recording, file, parts: new Map() });
        return send(200, { uploadId: id });
      }
      case "part": {
        const upload = this.uploads.get(uploadId ?? "");
        if (!upload || upload.recording !== recording || upload.file !== file)
          return send(404, { error: "no such upload" });
        if (request.headers["content-length"] !== String(body.length)) return send(400, { error: "content-length" });
        this.partsInFlight += 1;
        this.maxPartsInFlight = Math.max(this.maxPartsInFlight, this.partsInFlight);
        await new Promise((resolve) => setTimeout(resolve, this.partDelayMs));
        this.partsInFlight -= 1;
        const etag = randomUUID();
        upload.parts.set(Number(part), { etag, data: body });
        return send(200, { part: Number(part), etag });
      }
      case "complete": {
        const upload = this.uploads.get(uploadId ?? "");
        if (!upload) return send(404, { error: "no such upload" });
        const parsed = completeUploadBody.safeParse(JSON.parse(body.toString("utf8")));
        if (!parsed.success) return send(400, { error: parsed.error.message });
        const data: Buffer[] = [];
        for (const entry of parsed.data.parts) {
          const stored = upload.parts.get(entry.part);
          if (!stored || stored.etag !== entry.etag) return send(400, { error: `part ${entry.part} unknown` });
          data.push(stored.data);
        }
        const whole = Buffer.concat(data);
        if (whole.length !== parsed.data.bytes) return send(400, { error: "bytes" });
        this.uploads.delete(uploadId ?? "");
        this.completed.push({ recording, file, uploadId: uploadId ?? "", data: whole, body: parsed.data });
        return send(200, {});
      }
      case "failed": {
        const parsed = fileFailedBody.safeParse(JSON.parse(body.toString("utf8")));
        if (!parsed.success) return send(400, { error: parsed.error.message });
        this.failures.push({ recording, file, reason: parsed.data.reason });
        return send(200, {});
      }
    }
  }

  async close(): Promise<void> {
    for (const response of this.held) response.destroy();
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
