import { KurentoError, toErrorBody } from "./errors.ts";
import { createObject } from "./object-types.ts";
import type { MediaObject, MediaServerContext } from "./objects/media-object.ts";
import { ServerManager } from "./objects/server-manager.ts";
import {
  decodeFrame,
  errorFrame,
  isRpcMethod,
  type MethodParams,
  methodParamSchemas,
  parseParams,
  type RequestFrame,
  resultFrame,
  type RpcMethod,
} from "./protocol.ts";
import { type Connection, Session } from "./session.ts";

/** One WebSocket as the protocol sees it: the sessions it has spoken for, and the one it speaks for now. */
export interface ClientConnection extends Connection {
  current: Session | undefined;
  /** Set once the socket has closed; requests still in flight must not bind sessions to it. */
  closed: boolean;
  readonly sessions: Set<Session>;
}

type ResultBody = Record<string, unknown>;
type Call = { connection: ClientConnection; session: () => Session };
type Handler<M extends RpcMethod> = (params: MethodParams<M>, call: Call) => Promise<ResultBody> | ResultBody;

export interface RpcStats {
  objects: number;
  pipelines: number;
  sessions: number;
}

const NEW_REFERENCE = /^newref:(\d+)$/;

/**
 * The Kurento Protocol over any transport: parses frames, keeps sessions, and
 * runs requests against the media objects. Requests that touch the same object
 * run one after another, as KMS runs them; others run concurrently.
 */
export class KurentoRpc {
  readonly context: MediaServerContext;
  private readonly sessions = new Map<string, Session>();
  private readonly serverManager: ServerManager;
  private readonly sessionGraceMs: number;
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(context: MediaServerContext, sessionGraceMs: number) {
    this.context = context;
    this.sessionGraceMs = sessionGraceMs;
    // Each session learns only its own id and pipelines (session ids are what `connect` resumes).
    this.serverManager = new ServerManager(context, {
      sessionIds: (caller) => (caller ? [caller.id] : []),
      pipelineIds: (caller) =>
        context.registry
          .pipelines()
          .filter((pipeline) => caller !== undefined && pipeline.owner === caller)
          .map((pipeline) => pipeline.id),
    });
    context.registry.addPermanent(this.serverManager);
  }

  stats(): RpcStats {
    return {
      objects: this.context.registry.size,
      pipelines: this.context.registry.pipelines().length,
      sessions: this.sessions.size,
    };
  }

  /** Handles one text frame; returns the reply frame, or undefined when none is due (notifications, stray responses). */
  async handleText(connection: ClientConnection, text: string): Promise<unknown> {
    const decoded = decodeFrame(text);
    if (decoded.kind === "ignored") return undefined;
    if (decoded.kind === "invalid") return decoded.reply;
    const { id } = decoded.request;
    try {
      const result = await this.execute(connection, decoded.request);
      return id === undefined ? undefined : resultFrame(id, result);
    } catch (error) {
      return id === undefined ? undefined : errorFrame(id, toErrorBody(error));
    }
  }

  /** The socket closed: its sessions wait `sessionGraceMs` for a `connect`, then end. */
  disconnected(connection: ClientConnection): void {
    for (const session of connection.sessions) {
      if (session.connection !== connection) continue;
      session.detach(this.sessionGraceMs, () => {
        void this.endSession(session);
      });
    }
    connection.sessions.clear();
    connection.current = undefined;
    connection.closed = true;
  }

  async close(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((session) => this.endSession(session)));
    await Promise.all(this.context.registry.all().map((object) => object.release()));
  }

  private async endSession(session: Session): Promise<void> {
    if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
    await session.end();
  }

  /** Runs one request; `within` is the session of the transaction it is part of. */
  private async execute(
    connection: ClientConnection,
    request: Pick<RequestFrame, "method" | "params">,
    within?: Session,
  ): Promise<ResultBody> {
    const { method } = request;
    if (!isRpcMethod(method)) {
      throw new KurentoError(
        "METHOD_NOT_FOUND",
        `Method not found: "${method}" (the Kurento protocol has ${Object.keys(methodParamSchemas).join(", ")})`,
      );
    }
    const params = parseParams(methodParamSchemas[method], request.params, `"${method}"`);
    let resolved: Session | undefined;
    const call: Call = {
      connection,
      session: () => {
        resolved ??= within ?? this.resolveSession(connection, params.sessionId);
        return resolved;
      },
    };
    // Bind the session when the request arrives, not when its turn comes: by then the socket may be gone.
    if (method !== "ping" && method !== "connect") call.session();
    const key = "object" in params && typeof params.object === "string" ? params.object : undefined;
    const body = await this.inOrder(key, () => (this.handlers[method] as Handler<typeof method>)(params, call));
    return resolved ? { ...body, sessionId: resolved.id } : body;
  }

  private async inOrder<T>(key: string | undefined, work: () => Promise<T> | T): Promise<T> {
    if (key === undefined) return work();
    const previous = this.queues.get(key) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.queues.set(key, settled);
    void settled.then(() => {
      if (this.queues.get(key) === settled) this.queues.delete(key);
    });
    return next;
  }

  /**
   * The session a request speaks for. A request naming an unknown session
   * adopts that id (as KMS does): after a failed `connect`, kurento-client
   * keeps sending its old id and must still be served. A request naming a
   * session that another open socket speaks for is never served in it (that
   * would be a takeover): it is served in this socket's own session, a fresh
   * one if it has none, whose id the reply carries (kurento-client adopts it).
   */
  private resolveSession(connection: ClientConnection, sessionId: string | undefined): Session {
    const named = sessionId ? this.sessions.get(sessionId) : undefined;
    const taken = named?.heldElsewhere(connection) === true;
    let session = named && !taken ? named : sessionId && !taken ? undefined : connection.current;
    if (!session) {
      session = new Session(taken ? undefined : sessionId);
      this.sessions.set(session.id, session);
      if (connection.closed) session.detach(this.sessionGraceMs, () => void this.endSession(session as Session));
    }
    this.bind(connection, session);
    return session;
  }

  private bind(connection: ClientConnection, session: Session): void {
    if (connection.closed) {
      // A late request from a dead socket leaves sessions as they are; its reply goes nowhere anyway.
      return;
    }
    if (session.connection !== connection) session.attach(connection);
    connection.sessions.add(session);
    connection.current = session;
  }

  /** The object `id` if `session` may use it (its own, or the ServerManager); 40101 otherwise, as for an unknown id. */
  private object(id: string, session: Session): MediaObject {
    return this.context.registry.getFor(id, session);
  }

  /** Whether `connect {sessionId}` may resume `sessionId` on `connection`: it exists and no other open socket holds it. */
  private resumable(connection: ClientConnection, sessionId: string): Session | undefined {
    const session = this.sessions.get(sessionId);
    return session && !session.heldElsewhere(connection) ? session : undefined;
  }

  private readonly handlers = {
    ping: (params, { connection }) => {
      const known = params.sessionId ? this.resumable(connection, params.sessionId) : undefined;
      if (known) this.bind(connection, known);
      return { value: "pong" };
    },
    // A session another open socket holds answers exactly as an unknown one: its existence is not revealed.
    connect: (params, call) => {
      if (params.sessionId && !this.resumable(call.connection, params.sessionId)) {
        throw new KurentoError(
          "INVALID_SESSION",
          `Invalid session: "${params.sessionId}" is unknown (it expired, never existed, or another connection holds it)`,
        );
      }
      call.session();
      return {};
    },
    describe: (params, call) => {
      const object = this.object(params.object, call.session());
      return { hierarchy: [...object.hierarchy], qualifiedType: object.qualifiedType, type: object.typeName };
    },
    create: (params, call) => {
      const session = call.session();
      const object = createObject(this.context, params.type, params.constructorParams, session);
      session.adopt(object);
      return { value: object.id };
    },
    invoke: async (params, call) => {
      const session = call.session();
      const object = this.object(params.object, session);
      const value = await object.invoke(params.operation, params.operationParams, session);
      return value === undefined ? {} : { value };
    },
    subscribe: (params, call) => {
      const session = call.session();
      const object = this.object(params.object, session);
      const subscription = object.subscribe(params.type, session);
      session.addSubscription(subscription, object);
      return { value: subscription };
    },
    // Lenient on purpose: kurento-client unsubscribes from objects right after releasing them, so a
    // released object's is fine. Another session's object is not found (40101), and only the session's
    // own subscriptions are dropped.
    unsubscribe: (params, call) => {
      const session = call.session();
      if (this.context.registry.find(params.object)) this.object(params.object, session);
      session.dropSubscription(params.subscription, params.object);
      return {};
    },
    release: async (params, call) => {
      const object = this.object(params.object, call.session());
      if (object instanceof ServerManager)
        throw new KurentoError("MEDIA_OBJECT_ILLEGAL_PARAM_ERROR", "The ServerManager cannot be released");
      await object.release();
      return {};
    },
    transaction: async (params, call) => {
      const session = call.session();
      const results: unknown[] = [];
      const ids: Array<string | undefined> = [];
      for (const [index, operation] of params.operations.entries()) {
        const replyId = operation.id ?? index;
        try {
          if (operation.method === "transaction")
            throw new KurentoError("MALFORMED_TRANSACTION", "Transactions cannot be nested");
          const resolvedParams = resolveReferences(operation.params ?? {}, ids);
          const result = await this.execute(
            call.connection,
            { method: operation.method, params: { ...resolvedParams, sessionId: session.id } },
            session,
          );
          ids.push(typeof result.value === "string" ? result.value : undefined);
          results.push(resultFrame(replyId, result));
        } catch (error) {
          ids.push(undefined);
          results.push(errorFrame(replyId, toErrorBody(error)));
        }
      }
      return { value: results };
    },
  } satisfies { [M in RpcMethod]: Handler<M> };
}

/** In a transaction, `newref:N` stands for the id created by operation N. */
function resolveReferences(params: Record<string, unknown>, ids: Array<string | undefined>): Record<string, unknown> {
  const resolve = (value: unknown): unknown => {
    if (typeof value !== "string") return value;
    const match = NEW_REFERENCE.exec(value);
    if (!match) return value;
    const id = ids[Number(match[1])];
    if (id === undefined)
      throw new KurentoError(
        "MALFORMED_TRANSACTION",
        `${value} does not name an object created earlier in this transaction`,
      );
    return id;
  };
  const resolved: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params)) {
    if (
      (key === "constructorParams" || key === "operationParams") &&
      value &&
      typeof value === "object" &&
      !Array.isArray(value)
    ) {
      resolved[key] = Object.fromEntries(
        Object.entries(value).map(([inner, innerValue]) => [inner, resolve(innerValue)]),
      );
    } else {
      resolved[key] = resolve(value);
    }
  }
  return resolved;
}
