/**
 * The server's REST API as typed calls: the room list and the client
 * configuration (loopback options, available media filters).
 */
import type { z } from "zod";
import { describeIssues } from "../../../protocol/jsonrpc.ts";
import { type ClientConfigResponse, clientConfigResponse, roomListResponse } from "../../../protocol/rest.ts";

export type ClientConfig = ClientConfigResponse;

export type FetchLike = (
  input: string,
  init?: { headers?: Record<string, string> },
) => Promise<{
  ok: boolean;
  status: number;
  json(): Promise<unknown>;
}>;

/** `ws(s)://host/…` or `http(s)://host/…` → `http(s)://host`. */
export function httpBase(url: string): string {
  const parsed = new URL(url);
  const protocol = parsed.protocol === "wss:" || parsed.protocol === "https:" ? "https:" : "http:";
  return `${protocol}//${parsed.host}`;
}

async function getJson<T>(url: string, schema: z.ZodType<T>, fetchImpl: FetchLike): Promise<T> {
  const response = await fetchImpl(url);
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  const parsed = schema.safeParse(await response.json());
  if (!parsed.success) throw new Error(`GET ${url}: unexpected answer (${describeIssues(parsed.error)})`);
  return parsed.data;
}

function defaultFetch(): FetchLike {
  const global = (globalThis as { fetch?: FetchLike }).fetch;
  if (!global) throw new Error("fetch is not available: pass one");
  return global;
}

/** `GET /getAllRooms`: the names of the open rooms. */
export function getAllRooms(baseUrl: string, fetchImpl: FetchLike = defaultFetch()): Promise<string[]> {
  return getJson(`${httpBase(baseUrl)}/getAllRooms`, roomListResponse, fetchImpl);
}

/** `GET /getClientConfig`. */
export function getClientConfig(baseUrl: string, fetchImpl: FetchLike = defaultFetch()): Promise<ClientConfig> {
  return getJson(`${httpBase(baseUrl)}/getClientConfig`, clientConfigResponse, fetchImpl);
}
