/**
 * One Durable Object per room: terminates the participants' WebSockets with
 * the Hibernation API and runs the pure room core. A thin adapter: decode a
 * frame, apply it to the core, carry out the effects, persist what changed.
 *
 * While hibernated the object keeps nothing in memory: the roster and the
 * pending media requests are rows in SQLite, each socket's session id is in
 * its attachment.
 */
import { DurableObject } from "cloudflare:workers";
import { findByUser } from "../core/room-core.ts";
import type { ModerationResponse, RoomInfoResponse } from "../../protocol/rest.ts";
import { apply, nextDeadline } from "../core/room-core.ts";
import type { CoreContext } from "../core/hooks.ts";
import { appHooks } from "../app-hooks.ts";
import { type Audience, type Effect, type Input, type RoomState, inAudience } from "../core/types.ts";
import { hasLiveStream } from "../core/streams.ts";
import { adminActionBody, adminUnpublishTarget, roomInfo } from "./room-info.ts";
import {
  decodeFrame,
  encodeError,
  encodeNotification,
  encodeResult,
  type Incoming as DecodedFrame,
} from "../../protocol/jsonrpc.ts";
import { claimBridgeToken } from "../bridge-auth.ts";
import { NonceLedger } from "../auth/nonce-ledger.ts";
import { RoomMediaLink } from "./room-media-link.ts";
import { settingsOf, type Env } from "../env.ts";
import { newSessionId } from "../session-id.ts";
import { HEARTBEAT_REQUEST, HEARTBEAT_RESPONSE, requestParams } from "../../protocol/room.ts";
import { RoomStore } from "./room-store.ts";
import { CloseCode } from "../../protocol/close-codes.ts";
import { checkJoinToken, type JoinGrant, type Role } from "../../protocol/tokens/join-token.ts";
import { iceServersFor } from "../../protocol/ice-servers.ts";
import type { Grant } from "../core/types.ts";
import { JsonRpcCode, RoomCode, rpcError } from "../../protocol/errors.ts";
import { SocketLimiter } from "../rate-limit.ts";
import { closeQuietly, safeSend } from "../ws-util.ts";
import { readSocketAttachment, writeSocketAttachment } from "./persisted.ts";
import { DirectorySync } from "./directory-sync.ts";
import { WebhookOutbox } from "./webhook-outbox.ts";
import { roomEvents } from "../core/room-events.ts";
import { roomOfSessionId } from "../session-id.ts";
import { RecordingOutbox } from "./recording-outbox.ts";
import { ledgerOf } from "./recording-ledger.ts";
import { recordingEndpoint, recordingGrant, type RecordingRoomHost, refusalInput } from "./recording-room.ts";

/** The worker names the room in this header: an object id alone does not say which room it is. */
export const ROOM_NAME_HEADER = "x-room-name";

/**
 * How long a room trusts the pool's word on simulcast (bridges come and go
 * rarely): joins within it need no asynchronous step.
 */
const SIMULCAST_CACHE_MS = 30_000;

export class RoomObject extends DurableObject<Env> {
  readonly #store: RoomStore;
  readonly #nonces: NonceLedger;
  readonly #media: RoomMediaLink;
  #state: RoomState | null = null;
  /** This instance's id, claimed in storage when it starts. */
  readonly #instance = crypto.randomUUID();
  /** session id → its live socket; rebuilt from attachments after hibernation. */
  readonly #sockets = new Map<string, WebSocket>();
  /** Inputs produced while carrying out effects (e.g. an immediate media failure). */
  readonly #queue: Input[] = [];
  #running = false;
  /** With join tokens, frames wait on one chain so they keep their order while a token is checked. */
  #clientChain: Promise<void> = Promise.resolve();
  /** Each client socket's request budget; in memory only (a hibernated object starts them full again). */
  readonly #limiters = new WeakMap<WebSocket, SocketLimiter>();
  readonly #directory: DirectorySync;
  readonly #webhooks: WebhookOutbox;
  /** What the room tells the recording ledger, in order (worker/do/recording-outbox.ts). */
  readonly #ledger: RecordingOutbox;
  /** Client frames waiting on #clientChain: while any does, later frames queue behind it (they keep their order). */
  #chained = 0;
  /** An emptied room waits for the nonces of its bridge tokens to expire before deleting its storage (ms). */
  #purgeAt: number | null = null;
  /**
   * Frames to the other members of a request that changed the room (participantJoined, …), held
   * until that change is committed (see #run), oldest first; `#heldSockets` are their sockets.
   */
  #held: Array<{ ws: WebSocket; frame: string }> = [];
  readonly #heldSockets = new Set<WebSocket>();
  /** Whether the step being carried out holds its broadcasts back (see #run). */
  #holding = false;
  /** Whether the inputs being run wrote ledger ops (sent once they are committed). */
  #ledgerDue = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#store = new RoomStore(ctx.storage.sql, this.#instance);
    this.#nonces = new NonceLedger(ctx.storage.sql);
    this.#webhooks = new WebhookOutbox(ctx.storage.sql, settingsOf(env).webhooks, (fields) =>
      console.log(JSON.stringify({ room: this.#state?.room, ...fields })),
    );
    this.#ledger = new RecordingOutbox(
      ctx.storage.sql,
      (ops) => ledgerOf(env).apply(ops),
      (fields) => console.log(JSON.stringify({ room: this.#state?.room, ...fields })),
    );
    this.#media = new RoomMediaLink(
      {
        // An evicted instance's timers and promises may still run (workerd's test runtime keeps them):
        // only the live instance feeds its core, so a stale one never answers or writes storage.
        deliver: (input) => {
          if (this.#isLiveInstance()) this.#run(input);
        },
        roster: () => this.#roster(),
        isPending: (ref) => this.#state?.pending.has(ref) ?? false,
        pendingRefs: () => [...(this.#state?.pending ?? [])].map(([ref, pending]) => ({ ref, op: pending.op })),
        giveUp: (ref, error) => this.#run({ type: "mediaGiveUp", ref, error }),
        refused: (command, error) => {
          const input = refusalInput(command, error);
          if (input && this.#isLiveInstance()) this.#run(input);
        },
        assign: (user) => this.#pool().assign(this.#state?.room ?? "", user),
        released: () => this.ctx.waitUntil(this.#pool().release(this.#state?.room ?? "")),
        log: (fields) => console.log(JSON.stringify({ room: this.#state?.room, ...fields })),
      },
      settingsOf(env).mediaTimeoutMs,
    );
    this.#directory = new DirectorySync({
      wanted: () => (this.#state?.participants.size ?? 0) > 0,
      listed: () => this.#store.listed(),
      setListed: (listed) => this.#store.setListed(listed),
      call: (listed) => {
        const directory = this.env.DIRECTORY.get(this.env.DIRECTORY.idFromName("directory"));
        const room = this.#state?.room ?? "";
        return listed ? directory.add(room) : directory.remove(room);
      },
      settled: (listed) => {
        if (!listed) this.#purgeIfEmpty();
      },
      retryAt: () => this.#setAlarm(this.#coreDeadline()),
      waitUntil: (promise) => this.ctx.waitUntil(promise),
      log: (fields) => console.log(JSON.stringify({ room: this.#state?.room, ...fields })),
    });
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(HEARTBEAT_REQUEST, HEARTBEAT_RESPONSE));
    // An object with sockets but no stored room (nobody has joined yet) finds its name in their session ids.
    const room = this.#store.roomName() ?? this.#roomOfSockets(ctx.getWebSockets("client"));
    if (room !== null) this.#state = this.#store.load(room);
    for (const ws of ctx.getWebSockets()) {
      const att = readSocketAttachment(ws);
      if (!att) continue;
      if (att.role === "bridge") this.#media.adopt(ws);
      else if (!att.superseded) this.#sockets.set(att.session, ws);
    }
    this.#orphanedSeatsDisconnected();
    if ((this.#state?.pending.size ?? 0) > 0) void ctx.blockConcurrencyWhile(async () => this.#resumePending());
  }

  /**
   * After a restart (a deploy, an eviction, a crash) every socket of the old
   * instance is gone without a close event ever reaching us: a seat whose
   * socket is not among `getWebSockets()` would otherwise stay connected
   * forever. It enters the reconnection window as if its socket had closed
   * (a wake from hibernation keeps the sockets, so it changes nothing then).
   */
  #orphanedSeatsDisconnected(): void {
    const state = this.#state;
    if (!state) return;
    for (const p of state.participants.values()) {
      if (p.disconnectedAt === null && !this.#sockets.has(p.session)) {
        this.#run({ type: "socketClosed", session: p.session });
      }
    }
  }

  /**
   * The object started (after a hibernation or an eviction) with media requests still pending:
   * their deadlines are in the rows, so the alarm must cover them (rows from before deadlines
   * existed included). Their answers still arrive by ref on an open bridge socket; a new bridge
   * socket gives up the ones it cannot answer (RoomMediaLink.attach).
   */
  #resumePending(): void {
    const state = this.#state;
    if (state && state.pending.size > 0) {
      this.#setAlarm(nextDeadline(state, settingsOf(this.env).room.reconnectWindowMs));
    }
  }

  #roomOfSockets(sockets: WebSocket[]): string | null {
    for (const ws of sockets) {
      const att = readSocketAttachment(ws);
      const room = att?.role === "client" ? roomOfSessionId(att.session) : null;
      if (room !== null) return room;
    }
    return null;
  }

  /** The core's next deadline (seat expiries, media requests), for an alarm set outside a step. */
  #coreDeadline(): number | null {
    return this.#state ? nextDeadline(this.#state, settingsOf(this.env).room.reconnectWindowMs) : null;
  }

  /**
   * The room is empty and the directory no longer lists it: its storage goes, so a room
   * that is not in use costs nothing. Nonces of bridge tokens are kept until those tokens
   * expire (a replayed token must still be refused), then the alarm comes back here.
   */
  #purgeIfEmpty(): void {
    const state = this.#state;
    if (!state || state.participants.size > 0 || state.pending.size > 0 || !this.#store.stored) return;
    // Undelivered webhook events and ledger ops are kept until they are sent (their delivery comes back here).
    if (!this.#webhooks.empty() || !this.#ledger.empty()) return;
    const guardedUntil = this.#nonces.guardedUntil();
    if (guardedUntil !== null) {
      this.#purgeAt = guardedUntil;
      this.#setAlarm(this.#coreDeadline());
      return;
    }
    this.#purgeAt = null;
    void this.ctx.blockConcurrencyWhile(async () => {
      const now = this.#state;
      if (!now || now.participants.size > 0 || now.pending.size > 0) return;
      if (!this.#webhooks.empty() || !this.#ledger.empty()) return;
      this.#store.forget();
      this.#nonces.forget();
      this.#webhooks.forget();
      this.#ledger.forget();
      await this.ctx.storage.deleteAlarm();
      await this.ctx.storage.deleteAll();
      this.#state = { ...now, seq: 0 };
      // Sockets still waiting to join keep their idle deadline.
      this.#setAlarm(null);
    });
  }

  /** Whether this instance is the room's live one (a newer instance claims the room when it starts). */
  #isLiveInstance(): boolean {
    try {
      return this.#store.instance() === this.#instance;
    } catch {
      return false;
    }
  }

  #pool() {
    return this.env.POOL.get(this.env.POOL.idFromName("pool"));
  }

  #roster(): { users: string[]; withMedia: string[] } {
    const users: string[] = [];
    const withMedia: string[] = [];
    for (const p of this.#state?.participants.values() ?? []) {
      users.push(p.user);
      if (hasLiveStream(p) || Object.values(p.subscriptions).includes("live")) withMedia.push(p.user);
    }
    return { users, withMedia };
  }

  override async fetch(request: Request): Promise<Response> {
    this.#flushHeld();
    const room = request.headers.get(ROOM_NAME_HEADER);
    if (!room) return new Response("missing room name", { status: 400 });
    this.#bindRoom(room);
    const url = new URL(request.url);
    if (url.pathname === "/close") {
      const hadParticipants = (this.#state?.participants.size ?? 0) > 0;
      if (!hadParticipants) return Response.json({ error: `Room '${room}' not found` }, { status: 404 });
      this.#run({ type: "close", reason: "closed by the administrator" });
      return Response.json({ room, closed: true });
    }
    if (url.pathname.startsWith("/admin/")) return this.#admin(url.pathname, request);
    if (url.pathname.startsWith("/recordings/")) return recordingEndpoint(this.#recordingHost(), url.pathname, request);
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    if (url.pathname.startsWith("/bridge/")) return this.#acceptBridge(request);
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    const settings = settingsOf(this.env);
    if (this.#unjoinedSockets().length >= settings.maxPendingSockets) {
      // Refused after the handshake, so the client can read why (a browser sees no HTTP status).
      server.accept();
      const reason = `too many connections waiting to join room '${room}' (at most ${settings.maxPendingSockets}); try again later`;
      closeQuietly(server, CloseCode.POLICY_VIOLATION, reason.length > 120 ? reason.slice(0, 120) : reason);
      return new Response(null, { status: 101, webSocket: client });
    }
    const session = newSessionId(room);
    const openedAt = Date.now();
    this.ctx.acceptWebSocket(server, ["client"]);
    writeSocketAttachment(server, { role: "client", session, openedAt });
    this.#sockets.set(session, server);
    // A socket that never joins is closed by the alarm (no timer keeps the object awake).
    const deadline = openedAt + settings.idleSocketMs;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > deadline) await this.ctx.storage.setAlarm(deadline);
    return new Response(null, { status: 101, webSocket: client });
  }

  /** The admin REST API's view and actions (the worker checked the admin token and the names). */
  async #admin(path: string, request: Request): Promise<Response> {
    const state = this.#state;
    const room = state?.room ?? "";
    if (!state || state.participants.size === 0)
      return Response.json({ error: `Room '${room}' not found` }, { status: 404 });
    if (path === "/admin/info") return Response.json(roomInfo(state) satisfies RoomInfoResponse);
    const parsed = adminActionBody.safeParse(await request.json().catch(() => null));
    if (!parsed.success) return Response.json({ error: "malformed admin action" }, { status: 400 });
    const { user, streamId } = parsed.data;
    const them = findByUser(state, user);
    if (!them) return Response.json({ error: `User '${user}' not found in room '${room}'` }, { status: 404 });
    if (path === "/admin/evict") {
      this.#run({ type: "admin", action: { kind: "evict", user } });
      return Response.json({ room, user, done: "evicted" } satisfies ModerationResponse);
    }
    if (path === "/admin/unpublish") {
      const target = adminUnpublishTarget(them, streamId);
      if ("error" in target) return Response.json({ error: target.error }, { status: target.status });
      this.#run({ type: "admin", action: { kind: "unpublish", user, stream: target.stream } });
      return Response.json({ room, user, done: "unpublished" } satisfies ModerationResponse);
    }
    return Response.json({ error: "unknown admin action" }, { status: 404 });
  }

  /** Client sockets that have not joined (nor resumed a session), each with the time it was accepted. */
  #unjoinedSockets(closing?: WebSocket): Array<{ ws: WebSocket; session: string; openedAt: number }> {
    const out: Array<{ ws: WebSocket; session: string; openedAt: number }> = [];
    for (const ws of this.ctx.getWebSockets("client")) {
      if (ws === closing) continue;
      const att = readSocketAttachment(ws);
      if (att?.role !== "client" || att.superseded) continue;
      if (this.#state?.participants.has(att.session)) continue;
      out.push({ ws, session: att.session, openedAt: att.openedAt ?? 0 });
    }
    return out;
  }

  /** Closes the sockets that did not join within IDLE_SOCKET_SECONDS; the earliest deadline of the others. */
  #closeIdleSockets(now: number, closing?: WebSocket): number | null {
    const idleMs = settingsOf(this.env).idleSocketMs;
    let next: number | null = null;
    for (const { ws, session, openedAt } of this.#unjoinedSockets(closing)) {
      const deadline = openedAt + idleMs;
      if (deadline <= now) {
        writeSocketAttachment(ws, { role: "client", session, superseded: true });
        if (this.#sockets.get(session) === ws) this.#sockets.delete(session);
        closeQuietly(ws, CloseCode.POLICY_VIOLATION, `no joinRoom or connect within ${idleMs / 1000} s`);
      } else if (next === null || deadline < next) next = deadline;
    }
    return next;
  }

  /** The alarm serves two clocks: the core's seat expiries and the idle deadline of unjoined sockets. */
  #setAlarm(coreAt: number | null, closing?: WebSocket): void {
    const idleAt = this.#closeIdleSockets(Date.now(), closing);
    let at: number | null = null;
    const others = [this.#directory.retryAt, this.#purgeAt, this.#webhooks.nextAt(), this.#ledger.nextAt()];
    for (const t of [coreAt, idleAt, ...others]) {
      if (t !== null && (at === null || t < at)) at = t;
    }
    if (at === null) void this.ctx.storage.deleteAlarm();
    // An overdue deadline (0 for rows written before deadlines existed) fires at once; setAlarm refuses times <= 0.
    else void this.ctx.storage.setAlarm(Math.max(at, Date.now() + 1));
  }

  /** The worker has verified the bridge's token; the nonce must be new, and the pool must agree it is this room's bridge. */
  async #acceptBridge(request: Request): Promise<Response> {
    const claimed = claimBridgeToken(request, this.#nonces);
    if (claimed instanceof Response) return claimed;
    const { bridgeId } = claimed;
    const room = this.#state?.room ?? "";
    const verdict = await this.#pool().claim(room, bridgeId);
    if (!verdict.ok) {
      const error = `room '${room}' is served by media bridge '${verdict.owner}'`;
      console.log(
        JSON.stringify({ msg: "refused a bridge the pool did not assign", room, bridgeId, owner: verdict.owner }),
      );
      return Response.json({ error }, { status: 409 });
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, ["bridge"]);
    writeSocketAttachment(server, { role: "bridge", bridgeId });
    this.#media.attach(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  /** The pool's last answer on simulcast, and when it came. */
  #simulcastKnown: { value: boolean; at: number } | undefined;

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.#flushHeld();
    const att = readSocketAttachment(ws);
    if (!att) return;
    if (att.role === "bridge") return this.#media.receive(message);
    if (att.superseded) return;
    const frame = decodeFrame(message);
    if (!this.#withinRateLimit(ws, frame)) return;
    // startRecording signs an upload token; joinRoom asks the pool whether simulcast is available,
    // unless the room asked lately (a join then stays on the synchronous path).
    const asyncGrant =
      frame.kind === "request" &&
      (frame.method === "startRecording" || (frame.method === "joinRoom" && this.#simulcastCached() === undefined));
    if (!this.#grantsAreAsync() && !asyncGrant && this.#chained === 0) return this.#clientFrame(ws, frame);
    // Checking a join token, signing TURN credentials or an upload token is asynchronous: frames then
    // go through one chain, so they keep their order.
    return this.#chain(() => this.#clientFrame(ws, frame));
  }

  /** Runs `task` after every client frame (and close) already waiting on the chain. */
  #chain(task: () => void | Promise<void>): Promise<void> {
    this.#chained += 1;
    this.#clientChain = this.#clientChain
      .then(task)
      .catch((error: unknown) => console.error(JSON.stringify({ msg: "client frame failed", error: String(error) })))
      .finally(() => {
        this.#chained -= 1;
      });
    return this.#clientChain;
  }

  /**
   * Every frame but a `ping` request takes a token from the socket's bucket
   * (README "Limits"). Over the limit: -32000 and nothing is done; a socket
   * that keeps flooding is closed with 1008.
   */
  #withinRateLimit(ws: WebSocket, frame: DecodedFrame): boolean {
    let limiter = this.#limiters.get(ws);
    const now = Date.now();
    if (!limiter) {
      limiter = new SocketLimiter(settingsOf(this.env).rateLimit, now);
      this.#limiters.set(ws, limiter);
    }
    const method = frame.kind === "request" || frame.kind === "notification" ? frame.method : null;
    const verdict = limiter.check(method, now);
    if (verdict === "ok") return true;
    const id = frame.kind === "request" || frame.kind === "invalid" ? frame.id : null;
    const what = method === "sendMessage" ? "chat messages" : "requests";
    const error = rpcError(JsonRpcCode.RATE_LIMITED, `Rate limited: this connection sends ${what} too fast`);
    if (id !== null) this.#send(ws, encodeError(id, error));
    if (verdict === "close") {
      console.log(JSON.stringify({ msg: "closing a flooding socket", room: this.#state?.room }));
      // Its seat, if any, waits out the reconnection window like any dropped socket.
      closeQuietly(ws, CloseCode.POLICY_VIOLATION, "rate limit exceeded");
    }
    return false;
  }

  /** Whether joinRoom / connect need an asynchronous step first (a join token to check, TURN credentials to sign). */
  #grantsAreAsync(): boolean {
    const settings = settingsOf(this.env);
    return settings.joinTokenSecret !== null || settings.ice !== null;
  }

  async #clientFrame(ws: WebSocket, frame: DecodedFrame): Promise<void> {
    const att = readSocketAttachment(ws);
    if (att?.role !== "client" || att.superseded || !this.#state) return;
    switch (frame.kind) {
      case "invalid":
        this.#send(ws, encodeError(frame.id, frame.error));
        return;
      case "response":
        // The room sends no requests to clients; a stray response is ignored.
        return;
      case "request":
      case "notification": {
        const id = frame.kind === "request" ? frame.id : null;
        // Only joinRoom and connect get a grant (when a token or TURN is configured), and startRecording
        // (its upload token); every other frame (chat: the hot path) stays synchronous.
        const simulcast = frame.method === "joinRoom" ? this.#simulcastCached() : undefined;
        const needsGrant =
          ((frame.method === "joinRoom" || frame.method === "connect") && this.#grantsAreAsync()) ||
          (frame.method === "joinRoom" && simulcast === undefined) ||
          frame.method === "startRecording";
        const grant = needsGrant ? await this.#grantFor(frame.method, frame.params) : simulcast ? { simulcast } : {};
        if (typeof grant === "string") {
          if (id !== null) this.#send(ws, encodeError(id, rpcError(RoomCode.USER_GENERIC, grant)));
          return;
        }
        // The socket may have been superseded or closed by the room while the grant was made.
        const now = needsGrant ? readSocketAttachment(ws) : att;
        if (now?.role !== "client" || now.superseded) return;
        this.#run({ type: "request", session: now.session, id, method: frame.method, params: frame.params, grant });
        return;
      }
    }
  }

  /**
   * What the adapter adds to a joinRoom or connect (never read from the params): the role a join
   * token grants and the ICE servers with TURN credentials for that user; a string: why the join
   * is refused. Ill-typed params get nothing (the core answers -32602).
   */
  async #grantFor(method: string, params: unknown): Promise<Grant | string> {
    const settings = settingsOf(this.env);
    if (method === "startRecording") return { recording: await recordingGrant(this.env) };
    let user: string | undefined;
    let role: Role | undefined;
    if (method === "joinRoom") {
      const parsed = requestParams.joinRoom.safeParse(params ?? {});
      if (!parsed.success) return {};
      user = parsed.data.user;
      if (settings.joinTokenSecret !== null) {
        const grant = await this.#joinGrant(settings.joinTokenSecret, params);
        if (grant && !grant.ok) return grant.problem;
        role = grant?.ok ? grant.role : undefined;
      }
    } else if (method === "connect" && settings.ice !== null) {
      const parsed = requestParams.connect.safeParse(params ?? {});
      const sessionId = parsed.success ? parsed.data.sessionId : undefined;
      user = sessionId === undefined ? undefined : this.#state?.participants.get(sessionId)?.user;
    } else {
      return {};
    }
    const iceServers =
      settings.ice !== null && user !== undefined ? await iceServersFor(settings.ice, user) : undefined;
    const simulcast = method === "joinRoom" ? await this.#simulcastAvailable() : false;
    return { ...(role ? { role } : {}), ...(iceServers ? { iceServers } : {}), ...(simulcast ? { simulcast } : {}) };
  }

  /** The pool's answer on simulcast if it is recent enough to trust, else undefined. */
  #simulcastCached(): boolean | undefined {
    const known = this.#simulcastKnown;
    return known && Date.now() - known.at < SIMULCAST_CACHE_MS ? known.value : undefined;
  }

  /**
   * Whether every connected bridge's media servers forward simulcast (the pool knows); false when
   * it cannot say. Remembered for a while: a burst of joins asks the pool once.
   */
  async #simulcastAvailable(): Promise<boolean> {
    const cached = this.#simulcastCached();
    if (cached !== undefined) return cached;
    const now = Date.now();
    let value = false;
    try {
      ({ simulcast: value } = await this.env.POOL.get(this.env.POOL.idFromName("pool")).summary());
    } catch {
      // The pool is unreachable: one layer is always safe.
    }
    this.#simulcastKnown = { value, at: now };
    return value;
  }

  /**
   * With JOIN_TOKEN_SECRET set, joinRoom needs a token for that user and room; what it grants (a
   * role) goes to the core beside the params, never in them. Null for ill-typed params (the core's -32602).
   */
  async #joinGrant(secret: string, params: unknown): Promise<JoinGrant | null> {
    const parsed = requestParams.joinRoom.safeParse(params ?? {});
    if (!parsed.success) return null;
    const { user, room, token } = parsed.data;
    const maxTtl = settingsOf(this.env).joinTokenMaxTtlSeconds;
    return checkJoinToken(secret, token, user, room, Math.floor(Date.now() / 1000), maxTtl);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    closeQuietly(ws, code, reason);
    return this.#afterFramesOf(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    return this.#afterFramesOf(ws);
  }

  /**
   * A socket's close is handled after its frames: with join tokens, frames may still wait on the
   * chain (a token being checked), and a joinRoom that completes after the close would seat a
   * user whose socket is already gone.
   */
  #afterFramesOf(ws: WebSocket): Promise<void> {
    this.#flushHeld();
    if (!this.#grantsAreAsync() && this.#chained === 0) {
      this.#socketGone(ws);
      return Promise.resolve();
    }
    return this.#chain(() => this.#socketGone(ws));
  }

  override async alarm(): Promise<void> {
    this.#flushHeld();
    if (!this.#state) return this.#setAlarm(null);
    // Media requests past their stored deadline get 301, worded by what this instance knows of
    // them; the tick fails any others (sent by an earlier instance) and always names the next
    // alarm (an `alarm` effect), which also covers the idle sockets.
    const now = Date.now();
    for (const [ref, pending] of this.#state.pending) {
      if (pending.deadline > now) continue;
      const error = this.#media.expire(ref);
      if (error) this.#run({ type: "mediaGiveUp", ref, error });
    }
    this.#run({ type: "tick" });
    // A directory call that failed is retried, and an emptied room deletes its storage, from here too:
    // after an eviction the alarm is all that is left of them.
    if (this.#store.stored) this.#directory.sync();
    await Promise.all([this.#deliverWebhooks(), this.#deliverLedger()]);
  }

  /** Sends the webhook events that are due; then the alarm covers the retries, and an emptied room may go. */
  async #deliverWebhooks(): Promise<void> {
    await this.#webhooks.deliver();
    if (!this.#isLiveInstance() && this.#store.stored) return;
    this.#setAlarm(this.#coreDeadline());
    this.#purgeIfEmpty();
  }

  /** Sends the ledger outbox; then the alarm covers a retry, and an emptied room may go. True once all is sent. */
  async #deliverLedger(): Promise<boolean> {
    const done = await this.#ledger.deliver();
    if (!this.#isLiveInstance() && this.#store.stored) return done;
    this.#setAlarm(this.#coreDeadline());
    this.#purgeIfEmpty();
    return done;
  }

  #recordingHost(): RecordingRoomHost {
    return {
      env: this.env,
      state: () => this.#state,
      run: (input: Input) => this.#run(input),
      flushLedger: () => this.#deliverLedger(),
    };
  }

  #socketGone(ws: WebSocket): void {
    const att = readSocketAttachment(ws);
    if (!att) return;
    if (att.role === "bridge") return this.#media.gone(ws);
    if (att.superseded) return;
    if (this.#sockets.get(att.session) === ws) this.#sockets.delete(att.session);
    if (this.#state?.participants.has(att.session)) return this.#run({ type: "socketClosed", session: att.session });
    // A socket that never joined: its idle deadline no longer needs the alarm (a stray one leaves nothing stored).
    this.#setAlarm(this.#coreDeadline(), ws);
  }

  /** The room's name, known from the first request; stored only with the first change of the room. */
  #bindRoom(room: string): void {
    if (this.#state) return;
    this.#state = this.#store.load(room);
  }

  #coreContext(): CoreContext {
    return { now: Date.now(), config: settingsOf(this.env).room, hooks: appHooks };
  }

  /**
   * Applies an input and everything it leads to, in order; persistence is synchronous SQLite.
   *
   * A request that changes the room (a join, above all) writes its row, and the output gate
   * holds every frame sent in this turn until that write is committed. Sending the N-1
   * broadcast frames costs ~100 µs each in workerd, all of it before the commit and so before
   * the requester's answer leaves. So a request's broadcasts are held and sent once the write
   * is committed (or first thing in the object's next event, whichever comes first): the
   * answer waits only for the commit. Nothing is visible before it is durable, and every socket
   * still gets its frames in the core's order (a frame to a socket with held frames queues
   * behind them; see #send). Only the order *across* sockets changes: the joiner's answer may
   * now arrive before the others' participantJoined (it often did anyway, two sockets being two
   * streams; test/integration/room-service.test.ts).
   *
   * A successful joinRoom's own answer goes further: it is sent before the step's write, so the
   * output gate (which holds only what is sent after a write) lets it out at once, like an
   * `allowUnconfirmed` write. The row is still written in this turn and committed right after;
   * the others' frames, directory and webhook calls still wait for that commit. If the commit
   * fails, workerd breaks the object and resets it: the held frames are dropped, the joiner's
   * socket goes with the instance, and its resume (`connect`) is refused as an unknown session,
   * which the client reports as an expired seat (join again). docs/architecture.md.
   */
  #run(input: Input): void {
    this.#queue.push(input);
    if (this.#running) return;
    this.#running = true;
    let events = false;
    this.#ledgerDue = false;
    try {
      for (let next = this.#queue.shift(); next; next = this.#queue.shift()) {
        const before = this.#state;
        if (!before) continue;
        const context = this.#coreContext();
        const step = apply(before, next, context);
        // A join's answer leaves before its row is written (see #run), then the write.
        const early = step.state !== before ? earlyReply(next, step.effects) : null;
        if (early) this.#performObserved(step.state.room, early);
        this.#store.save(before, step.state);
        this.#holding = next.type === "request" && step.state !== before;
        // In the same synchronous step as the change: both are committed together, or neither.
        const happened = this.#webhooks.enabled ? roomEvents(before, step.state) : [];
        if (happened.length > 0) {
          this.#webhooks.enqueue(step.state.room, happened, context.now);
          events = true;
        }
        this.#state = step.state;
        for (const effect of step.effects) if (effect !== early) this.#performObserved(step.state.room, effect);
      }
    } finally {
      this.#running = false;
      this.#holding = false;
    }
    if (this.#held.length > 0) {
      // Resolves once this turn's write is committed; an event delivered before that flushes first.
      // A failed commit breaks the object (workerd resets it): frames about a change that was
      // never committed are dropped, not sent.
      this.ctx.storage.sync().then(
        () => this.#flushHeld(),
        () => {
          this.#held = [];
          this.#heldSockets.clear();
        },
      );
    }
    // Sent after the step's replies went out: a receiver never slows a join or a chat.
    if (events) this.ctx.waitUntil(this.#deliverWebhooks());
    if (this.#ledgerDue) this.ctx.waitUntil(this.#deliverLedger());
  }

  #performObserved(room: string, effect: Effect): void {
    this.#perform(effect);
    if (appHooks.observe) observeSafely(room, effect);
  }

  #perform(effect: Effect): void {
    switch (effect.kind) {
      case "reply":
        this.#sendTo(effect.session, encodeResult(effect.id, effect.result));
        return;
      case "error":
        this.#sendTo(effect.session, encodeError(effect.id, effect.error));
        return;
      case "notify":
        this.#sendTo(effect.session, encodeNotification(effect.notification.method, effect.notification.params));
        return;
      case "broadcast":
        this.#broadcast(
          effect.except,
          encodeNotification(effect.notification.method, effect.notification.params),
          effect.audience,
        );
        return;
      case "close": {
        const ws = this.#sockets.get(effect.session);
        this.#sockets.delete(effect.session);
        // Its held frames go first (a socket's frames keep their order, its close included).
        if (ws && this.#heldSockets.has(ws)) this.#flushHeld();
        if (ws) {
          // Mark it first: its close event must not start a reconnection window.
          writeSocketAttachment(ws, { role: "client", session: effect.session, superseded: true });
          closeQuietly(ws, effect.code, effect.reason);
        }
        return;
      }
      case "bind":
        this.#bind(effect.from, effect.to);
        return;
      case "media":
        this.#media.send(effect.command, effect.ref);
        return;
      case "alarm":
        this.#setAlarm(effect.at);
        return;
      case "directory":
        // Reconciled from the room's state, not the effect: the latest state is what the directory should show.
        this.#directory.sync();
        return;
      case "ledger":
        // In the step's own write: the op is committed with the change it reports.
        this.#ledger.enqueue(effect.op);
        this.#ledgerDue = true;
        return;
    }
  }

  #sendTo(session: string, frame: string): void {
    const ws = this.#sockets.get(session);
    if (ws) this.#send(ws, frame);
  }

  /** Sends now, unless the socket has held frames: then behind them (a socket's frames keep their order). */
  #send(ws: WebSocket, frame: string): void {
    if (this.#heldSockets.has(ws)) this.#held.push({ ws, frame });
    else safeSend(ws, frame);
  }

  #broadcast(except: string | null, frame: string, audience?: Audience): void {
    const state = this.#state;
    if (!state) return;
    for (const p of state.participants.values()) {
      if (p.session === except || p.disconnectedAt !== null || !inAudience(p, audience)) continue;
      const ws = this.#sockets.get(p.session);
      if (!ws) continue;
      if (this.#holding) {
        this.#held.push({ ws, frame });
        this.#heldSockets.add(ws);
      } else this.#send(ws, frame);
    }
  }

  /** Sends the held frames, oldest first (see #run). */
  #flushHeld(): void {
    if (this.#held.length === 0) return;
    const held = this.#held;
    this.#held = [];
    this.#heldSockets.clear();
    for (const { ws, frame } of held) safeSend(ws, frame);
  }

  #bind(from: string, to: string): void {
    const ws = this.#sockets.get(from);
    if (!ws) return;
    // The socket changes identity: whatever was held goes out first, under the old one.
    this.#flushHeld();
    const previous = this.#sockets.get(to);
    if (previous && previous !== ws) {
      writeSocketAttachment(previous, { role: "client", session: to, superseded: true });
      closeQuietly(previous, CloseCode.SESSION_SUPERSEDED, "session resumed on another connection");
    }
    this.#sockets.delete(from);
    this.#sockets.set(to, ws);
    writeSocketAttachment(ws, { role: "client", session: to });
  }
}

/** The reply of a successful joinRoom, sent before the step's write (see #run); null for anything else. */
function earlyReply(input: Input, effects: readonly Effect[]): Effect | null {
  if (input.type !== "request" || input.method !== "joinRoom") return null;
  return effects.find((e) => e.kind === "reply" && e.session === input.session) ?? null;
}

function observeSafely(room: string, effect: Effect): void {
  try {
    appHooks.observe?.(room, effect);
  } catch (error) {
    console.error(JSON.stringify({ msg: "room observer failed", room, error: String(error) }));
  }
}
