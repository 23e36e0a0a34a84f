/**
 * The worker's upload API for one recorded file (protocol/recordings.ts),
 * with the file's upload token as Bearer credential: create a multipart
 * upload, send its parts streamed from disk, complete it, or report the file
 * failed. Every answer is validated; every failure is an UploadError that
 * says whether trying again may help.
 */
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import type { z } from "zod";
import {
  type completeUploadBody,
  createUploadResponse,
  fileFailedBody,
  uploadPartResponse,
} from "../../protocol/recordings.ts";

export type FetchLike = typeof fetch;

/**
 * A failed call. `status` is the HTTP status, or null when no answer came
 * (network error, timeout). Worth retrying: no answer, 5xx, 408, 429.
 */
export class UploadError extends Error {
  readonly status: number | null;
  readonly retryable: boolean;
  constructor(message: string, status: number | null, retryable: boolean) {
    super(message);
    this.name = "UploadError";
    this.status = status;
    this.retryable = retryable;
  }
}

export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

export interface UploadApiOptions {
  /** `http(s)://…` of the worker, no trailing slash. */
  readonly workerUrl: string;
  readonly recording: string;
  readonly file: string;
  readonly token: string;
  /** Aborts every call (the bridge is stopping). */
  readonly signal: AbortSignal;
  /** Bound of one call, a part's upload included. */
  readonly timeoutMs: number;
  readonly fetch?: FetchLike;
}

type CompleteBody = z.infer<typeof completeUploadBody>;

export class UploadApi {
  private readonly options: UploadApiOptions;
  private readonly base: string;

  constructor(options: UploadApiOptions) {
    this.options = options;
    this.base =
      `${options.workerUrl}/bridge/recordings/${encodeURIComponent(options.recording)}` +
      `/files/${encodeURIComponent(options.file)}`;
  }

  async create(): Promise<string> {
    const answer = await this.call("POST", "/uploads", "create the upload");
    return parse(createUploadResponse, answer, "create the upload").uploadId;
  }

  /** Sends bytes [start, start + length) of `path` as part `part`, streamed from disk. */
  async putPart(
    uploadId: string,
    part: number,
    path: string,
    start: number,
    length: number,
  ): Promise<z.infer<typeof uploadPartResponse>> {
    const what = `upload part ${part}`;
    const answer = await this.call("PUT", `/uploads/${encodeURIComponent(uploadId)}/parts/${part}`, what, {
      // `end` is inclusive; an empty part reads nothing.
      body: length === 0 ? "" : streamOf(path, start, start + length - 1),
      headers: { "content-type": "application/octet-stream", "content-length": String(length) },
    });
    return parse(uploadPartResponse, answer, what);
  }

  async complete(uploadId: string, body: CompleteBody): Promise<void> {
    await this.call("POST", `/uploads/${encodeURIComponent(uploadId)}/complete`, "complete the upload", {
      body: JSON.stringify(body),
      headers: { "content-type": "application/json" },
    });
  }

  async failed(reason: string): Promise<void> {
    const body = fileFailedBody.parse({ reason: reason.slice(0, 1024) || "failed" });
    await this.call("POST", "/failed", "report the file failed", {
      body: JSON.stringify(body),
      headers: { "content-type": "application/json" },
    });
  }

  private async call(
    method: string,
    path: string,
    what: string,
    init: { body?: string | ReadableStream; headers?: Record<string, string> } = {},
  ): Promise<unknown> {
    const fetchImpl = this.options.fetch ?? fetch;
    const signal = AbortSignal.any([this.options.signal, AbortSignal.timeout(this.options.timeoutMs)]);
    let response: Response;
    try {
      response = await fetchImpl(`${this.base}${path}`, {
        method,
        signal,
        headers: { authorization: `Bearer ${this.options.token}`, ...init.headers },
        ...(init.body === undefined ? {} : { body: init.body }),
        // A stream body needs half duplex (Node's fetch); harmless for a string.
        ...(init.body instanceof ReadableStream ? { duplex: "half" } : {}),
      } as RequestInit);
    } catch (error) {
      if (this.options.signal.aborted) throw error;
      const message = error instanceof Error ? describeNetworkError(error) : String(error);
      throw new UploadError(`${what}: no answer from the worker (${message})`, null, true);
    }
    const text = await response.text().catch(() => "");
    if (!response.ok) {
      const excerpt = text.replace(/\s+/g, " ").trim().slice(0, 300);
      throw new UploadError(
        `${what}: the worker answered ${response.status}${excerpt ? ` (${excerpt})` : ""}`,
        response.status,
        isRetryableStatus(response.status),
      );
    }
    if (text.trim() === "") return {};
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new UploadError(`${what}: the worker's answer is not JSON`, response.status, false);
    }
  }
}

function streamOf(path: string, start: number, end: number): ReadableStream {
  return Readable.toWeb(createReadStream(path, { start, end })) as ReadableStream;
}

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new UploadError(`${what}: unexpected answer from the worker`, null, false);
  return parsed.data;
}

/** fetch's "fetch failed" hides the reason in `cause`. */
function describeNetworkError(error: Error): string {
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) return `${error.message}: ${cause.message}`;
  return error.message;
}
