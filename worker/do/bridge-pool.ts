/**
 * The registry of media bridges (one object for the whole deployment).
 * Bridges dial in on `/bridge/control` and register their KMS capacity; a
 * room that needs media asks `assign()`, and the pool tells the chosen bridge
 * to `attach` (open `/bridge/rooms/:room`). Selection is the shared policy
 * of protocol/media-server-selection.ts (the original demo's FixedNKmsManager:
 * round-robin, `special*` users to the least loaded, a full pool refuses
 * with 204); the bridge uses the same function among its KMSes.
 */
import { DurableObject } from "cloudflare:workers";
import type * as z from "zod";
import { NonceLedger } from "../auth/nonce-ledger.ts";
import { claimBridgeToken } from "../bridge-auth.ts";
import type { Env } from "../env.ts";
import { controlParams, type controlResults, type FilterName } from "../../protocol/bridge.ts";
import { JsonRpcCode, RoomCode, rpcError, type RpcError } from "../../protocol/errors.ts";
import { describeIssues } from "../../protocol/jsonrpc.ts";
import { selectMediaServer } from "../../protocol/media-server-selection.ts";
import { RpcPeer, RpcRequestError } from "../../protocol/rpc-peer.ts";
import { CloseCode } from "../../protocol/close-codes.ts";
import { ATTACH_REPLY_MARGIN_MS, ATTACH_TIMEOUT_MS } from "../../protocol/timeouts.ts";
import { closeQuietly } from "../ws-util.ts";
import {
  readBridgeFilters,
  readBridgeSimulcast,
  readControlAttachment,
  writeBridgeFilters,
  writeControlAttachment,
} from "./persisted.ts";

interface BridgeRow {
  id: string;
  capacity: number;
  pipelines: number;
  /** JSON, read with readBridgeFilters. */
  filters: string;
}

export type Assignment = { ok: true; bridgeId: string } | { ok: false; error: RpcError };

export class BridgePool extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  readonly #nonces: NonceLedger;
  /** bridgeId → request helper on its control socket (rebuilt after hibernation). */
  readonly #peers = new Map<string, { ws: WebSocket; peer: RpcPeer }>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#nonces = new NonceLedger(this.#sql);
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS bridges (
      id TEXT PRIMARY KEY, capacity INTEGER NOT NULL, pipelines INTEGER NOT NULL, filters TEXT NOT NULL)`);
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS assignments (room TEXT PRIMARY KEY, bridge TEXT NOT NULL)`);
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    for (const ws of ctx.getWebSockets()) {
      const att = readControlAttachment(ws);
      if (att && !att.superseded) this.#peers.set(att.bridgeId, { ws, peer: this.#peerFor(ws) });
    }
  }

  override async fetch(request: Request): Promise<Response> {
    const claimed = claimBridgeToken(request, this.#nonces);
    if (claimed instanceof Response) return claimed;
    const { bridgeId } = claimed;
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    const previous = this.#peers.get(bridgeId);
    if (previous) {
      // The bridge reconnected: its old socket is dead or dying.
      writeControlAttachment(previous.ws, { bridgeId, superseded: true });
      previous.peer.closed("replaced by a new connection");
      closeQuietly(previous.ws, CloseCode.BRIDGE_REPLACED, "replaced by a new connection");
    }
    this.ctx.acceptWebSocket(server, ["control"]);
    writeControlAttachment(server, { bridgeId });
    this.#peers.set(bridgeId, { ws: server, peer: this.#peerFor(server) });
    return new Response(null, { status: 101, webSocket: client });
  }

  #peerFor(ws: WebSocket): RpcPeer {
    const bridgeId = readControlAttachment(ws)?.bridgeId ?? "";
    return new RpcPeer(
      { send: (frame) => ws.send(frame) },
      {
        timeoutMs: ATTACH_TIMEOUT_MS + ATTACH_REPLY_MARGIN_MS,
        onRequest: (method, params) => this.#onBridgeRequest(bridgeId, method, params),
        onNotification: (method, params) => this.#onBridgeNotification(bridgeId, method, params),
      },
    );
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const att = readControlAttachment(ws);
    if (!att || att.superseded) return;
    let entry = this.#peers.get(att.bridgeId);
    if (!entry || entry.ws !== ws) {
      entry = { ws, peer: this.#peerFor(ws) };
      this.#peers.set(att.bridgeId, entry);
    }
    entry.peer.receive(message);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.#controlGone(ws);
    closeQuietly(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.#controlGone(ws);
  }

  #controlGone(ws: WebSocket): void {
    const att = readControlAttachment(ws);
    if (!att || att.superseded) return;
    const entry = this.#peers.get(att.bridgeId);
    if (entry?.ws === ws) {
      entry.peer.closed("bridge disconnected");
      this.#peers.delete(att.bridgeId);
    }
  }

  #onBridgeRequest(bridgeId: string, method: string, params: unknown): unknown {
    if (method !== "register")
      throw new RpcRequestError(rpcError(JsonRpcCode.METHOD_NOT_FOUND, `Method not found: ${method}`));
    const parsed = controlParams.register.safeParse(params);
    if (!parsed.success)
      throw new RpcRequestError(
        rpcError(JsonRpcCode.INVALID_PARAMS, `Invalid params for register: ${describeIssues(parsed.error)}`),
      );
    const r = parsed.data;
    if (r.bridgeId !== bridgeId)
      throw new RpcRequestError(rpcError(JsonRpcCode.INVALID_PARAMS, "bridgeId differs from the token's bridge id"));
    const capacity = r.kms.reduce((sum, k) => sum + k.limit, 0);
    this.#sql.exec(
      `INSERT OR REPLACE INTO bridges (id, capacity, pipelines, filters) VALUES (?, ?, ?, ?)`,
      bridgeId,
      capacity,
      r.rooms.length,
      writeBridgeFilters(r.filters, r.simulcast === true),
    );
    // A room that was given to another bridge meanwhile stays with it: this bridge's room link
    // will be refused (409) and it releases the room's media.
    for (const room of r.rooms)
      this.#sql.exec(`INSERT OR IGNORE INTO assignments (room, bridge) VALUES (?, ?)`, room, bridgeId);
    return { accepted: true } satisfies z.infer<typeof controlResults.register>;
  }

  #onBridgeNotification(bridgeId: string, method: string, params: unknown): void {
    if (method !== "load") return;
    const parsed = controlParams.load.safeParse(params);
    if (!parsed.success) return;
    this.#sql.exec(`UPDATE bridges SET pipelines = ? WHERE id = ?`, parsed.data.pipelines, bridgeId);
  }

  #connectedBridges(): BridgeRow[] {
    return this.#sql
      .exec<{ id: string; capacity: number; pipelines: number; filters: string }>(
        `SELECT id, capacity, pipelines, filters FROM bridges ORDER BY id`,
      )
      .toArray()
      .filter((b) => this.#peers.has(b.id));
  }

  /** The shared selection policy over the connected bridges; the round-robin cursor persists in `meta`. */
  #choose(bridges: BridgeRow[], user: string): BridgeRow | RpcError {
    const row = this.#sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'rr'`).toArray()[0];
    const candidates = bridges.map((b) => ({ pipelines: b.pipelines, limit: b.capacity, available: true }));
    const choice = selectMediaServer(candidates, user, row ? Number(row.value) : 0);
    if (!choice.ok)
      return rpcError(
        choice.code,
        choice.code === RoomCode.ROOM_CANNOT_BE_CREATED ? "all media servers are full" : choice.message,
      );
    this.#sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('rr', ?)`, String(choice.nextCursor));
    return bridges[choice.index] as BridgeRow;
  }

  /** Picks (or keeps) the room's bridge and has it attach; resolves once the bridge says it has opened the room link. */
  async assign(room: string, user: string): Promise<Assignment> {
    const bridges = this.#connectedBridges();
    if (bridges.length === 0) return { ok: false, error: rpcError(RoomCode.MEDIA_GENERIC, "no media bridge attached") };
    const current = this.#sql
      .exec<{ bridge: string }>(`SELECT bridge FROM assignments WHERE room = ?`, room)
      .toArray()[0];
    let chosen = current ? bridges.find((b) => b.id === current.bridge) : undefined;
    if (!chosen) {
      const picked = this.#choose(bridges, user);
      if (!("id" in picked)) return { ok: false, error: picked };
      chosen = picked;
      this.#sql.exec(`INSERT OR REPLACE INTO assignments (room, bridge) VALUES (?, ?)`, room, chosen.id);
      // Count the new pipeline now, so concurrent assignments see it before the next load report.
      this.#sql.exec(`UPDATE bridges SET pipelines = pipelines + 1 WHERE id = ?`, chosen.id);
    }
    const entry = this.#peers.get(chosen.id);
    if (!entry) return { ok: false, error: rpcError(RoomCode.MEDIA_GENERIC, "no media bridge attached") };
    try {
      await entry.peer.request("attach", { room, user });
      return { ok: true, bridgeId: chosen.id };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return {
        ok: false,
        error: rpcError(RoomCode.MEDIA_GENERIC, `media bridge '${chosen.id}' could not attach: ${message}`),
      };
    }
  }

  /**
   * A bridge opened the room's link: may it serve the room? Yes if the pool assigned the room to
   * it, or to nobody (it becomes the owner), or to a bridge whose control link is down (the room
   * moves to the one that is here). No if the owner is another connected bridge: the room
   * accepts only the bridge the pool assigned, so two bridges with flapping links can never take
   * the room from each other in turn.
   */
  async claim(room: string, bridgeId: string): Promise<{ ok: true } | { ok: false; owner: string }> {
    const current = this.#sql
      .exec<{ bridge: string }>(`SELECT bridge FROM assignments WHERE room = ?`, room)
      .toArray()[0];
    if (current && current.bridge !== bridgeId && this.#peers.has(current.bridge)) {
      return { ok: false, owner: current.bridge };
    }
    if (current?.bridge !== bridgeId) {
      this.#sql.exec(`INSERT OR REPLACE INTO assignments (room, bridge) VALUES (?, ?)`, room, bridgeId);
    }
    return { ok: true };
  }

  /** The room released its media: forget the assignment. */
  async release(room: string): Promise<void> {
    this.#sql.exec(`DELETE FROM assignments WHERE room = ?`, room);
  }

  async summary(): Promise<{ bridges: number; filters: FilterName[]; simulcast: boolean }> {
    const bridges = this.#connectedBridges();
    // A filter (or simulcast) is offered only when every bridge can apply it: a room may land on any.
    let filters: FilterName[] | null = null;
    for (const b of bridges) {
      const own = readBridgeFilters(b.filters);
      filters = filters === null ? own : filters.filter((f) => own.includes(f));
    }
    const simulcast = bridges.length > 0 && bridges.every((b) => readBridgeSimulcast(b.filters));
    return { bridges: bridges.length, filters: filters ?? [], simulcast };
  }
}
