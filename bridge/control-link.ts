/**
 * `/bridge/control`: the bridge's socket to the BridgePool Durable Object.
 * After every (re)connection the first request is `register` (id, KMS list
 * with limits, the rooms it already holds, filter and recording capability); then a `load`
 * notification every `loadIntervalMs` and whenever the pipeline count
 * changes. The pool sends `attach {room, user}`: the bridge opens (or keeps)
 * the room's link and answers `{}` once that socket is open.
 *
 * `register` is sent again on the same socket when a capability
 * changes (a KMS came up later); the pool should treat it as an update.
 */
import { controlParams, controlResults, type FilterName } from "../protocol/bridge.ts";
import { JsonRpcCode, RoomCode, rpcError } from "../protocol/errors.ts";
import { describeIssues } from "../protocol/jsonrpc.ts";
import { RpcPeer, RpcRequestError } from "../protocol/rpc-peer.ts";
import { CloseCode } from "../protocol/close-codes.ts";
import { REGISTER_TIMEOUT_MS } from "../protocol/timeouts.ts";
import { CONTROL_AUDIENCE, signBridgeToken, type BridgeCredential } from "../protocol/tokens/bridge-token.ts";
import { type KmsConfig, toWebSocketUrl } from "./config.ts";
import type { Logger } from "./log.ts";
import { type BackoffOptions, ReconnectingSocket } from "./reconnecting-socket.ts";

export interface ControlLinkOptions {
  readonly workerUrl: string;
  readonly bridgeId: string;
  /** BRIDGE_SECRET (the master: any id), or `{bridgeKey}` (BRIDGE_KEY: this bridge's own key, good for its id only). */
  readonly secret: BridgeCredential;
  readonly kms: readonly KmsConfig[];
  readonly log: Logger;
  readonly backoff?: BackoffOptions;
  readonly heartbeatMs?: number;
  readonly loadIntervalMs: number;
  /** What the bridge holds and can do right now. */
  readonly rooms: () => string[];
  readonly filters: () => FilterName[];
  /** Whether `record` can work here (a writable RECORDINGS_DIR, media servers with RecorderEndpoint). */
  readonly recording: () => boolean;
  /** Whether every media server forwards simulcast by layer (absent: never). */
  readonly simulcast?: () => boolean;
  readonly pipelines: () => number;
  /** Bounded wait before the first `register` of a connection (KMS capabilities). */
  readonly beforeRegister: () => Promise<void>;
  /** `attach {room, user}`: resolve once the room link is open. */
  readonly attach: (room: string, user: string) => Promise<void>;
  /** Registered again after a (re)connection. */
  readonly onRegistered: () => void;
}

export class ControlLink {
  private readonly options: ControlLinkOptions;
  private readonly socket: ReconnectingSocket;
  private readonly peer: RpcPeer;
  private readonly log: Logger;
  private loadTimer: NodeJS.Timeout | undefined;
  private lastLoad: number | undefined;
  /** The capabilities last registered (filters and recording), to register again when they change. */
  private lastCapabilities = "";
  registered = false;
  /** Successful registrations so far (tests). */
  registrations = 0;

  constructor(options: ControlLinkOptions) {
    this.options = options;
    this.log = options.log.child({ link: CONTROL_AUDIENCE });
    this.peer = new RpcPeer(
      { send: (frame) => this.socket.send(frame) },
      {
        timeoutMs: REGISTER_TIMEOUT_MS,
        onRequest: (method, params) => this.handle(method, params),
        onNotification: (method) => this.log.debug("ignored a notification from the pool", { method }),
      },
    );
    this.socket = new ReconnectingSocket({
      name: CONTROL_AUDIENCE,
      url: `${toWebSocketUrl(options.workerUrl)}/bridge/control`,
      headers: async () => ({
        Authorization: `Bearer ${await signBridgeToken(options.secret, { bridgeId: options.bridgeId, audience: CONTROL_AUDIENCE })}`,
      }),
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.heartbeatMs !== undefined ? { heartbeatMs: options.heartbeatMs } : {}),
      log: options.log,
      onOpen: () => {
        this.peer.reopen();
        void this.register(true);
      },
      onMessage: (text) => this.peer.receive(text),
      onClose: () => {
        this.registered = false;
        this.stopLoadTimer();
        this.peer.closed("control link closed");
        return true;
      },
    });
  }

  get isOpen(): boolean {
    return this.socket.isOpen;
  }

  start(): void {
    this.socket.start();
  }

  async stop(): Promise<void> {
    this.stopLoadTimer();
    await this.socket.stop(CloseCode.NORMAL, "bridge stopping");
    this.peer.closed("bridge stopping");
  }

  /** Drops the socket; it reconnects (tests). */
  drop(): void {
    this.socket.drop();
  }

  /** Sends `load` now if the pipeline count changed since the last report. */
  reportLoad(force = false): void {
    if (!this.registered) return;
    const pipelines = this.options.pipelines();
    if (!force && pipelines === this.lastLoad) return;
    try {
      this.peer.notify("load", controlParams.load.parse({ pipelines }));
      this.lastLoad = pipelines;
    } catch {
      // link going down; the next registration reports again
    }
  }

  /** Registers again when what the bridge can do changed (filters, recording). */
  capabilitiesChanged(): void {
    if (this.registered && this.capabilities() !== this.lastCapabilities) void this.register(false);
  }

  private capabilities(): string {
    return `${this.options.filters().join(",")};${this.options.recording()};${this.options.simulcast?.() ?? false}`;
  }

  private async register(fresh: boolean): Promise<void> {
    const connection = this.socket.opens;
    if (fresh) await this.options.beforeRegister();
    if (!this.socket.isOpen || this.socket.opens !== connection) return;
    const filters = this.options.filters();
    const recording = this.options.recording();
    const simulcast = this.options.simulcast?.() ?? false;
    const capabilities = this.capabilities();
    const params = controlParams.register.parse({
      bridgeId: this.options.bridgeId,
      kms: this.options.kms.map((kms) => ({ uri: kms.uri, limit: kms.limit })),
      rooms: this.options.rooms(),
      filters,
      recording,
      simulcast,
    });
    try {
      const result = await this.peer.request("register", params);
      const accepted = controlResults.register.safeParse(result);
      if (!accepted.success) throw new Error(`unexpected register answer: ${JSON.stringify(result)?.slice(0, 200)}`);
      this.lastCapabilities = capabilities;
      this.log.info("registered with the bridge pool", {
        bridgeId: this.options.bridgeId,
        rooms: params.rooms.length,
        filters,
        recording,
      });
      if (!fresh) return;
      this.registered = true;
      this.registrations += 1;
      this.lastLoad = undefined;
      this.reportLoad(true);
      this.startLoadTimer();
      this.options.onRegistered();
    } catch (error) {
      this.log.error("registration failed; reconnecting", {
        error: error instanceof Error ? error.message : String(error),
      });
      this.socket.drop(CloseCode.REGISTRATION_FAILED, "registration failed");
    }
  }

  private startLoadTimer(): void {
    this.stopLoadTimer();
    this.loadTimer = setInterval(() => this.reportLoad(true), this.options.loadIntervalMs);
    this.loadTimer.unref();
  }

  private stopLoadTimer(): void {
    clearInterval(this.loadTimer);
    this.loadTimer = undefined;
  }

  private async handle(method: string, params: unknown): Promise<unknown> {
    if (method !== "attach") {
      throw new RpcRequestError(
        rpcError(
          JsonRpcCode.METHOD_NOT_FOUND,
          `Method not found: ${method} (the bridge's control link handles attach)`,
        ),
      );
    }
    const parsed = controlParams.attach.safeParse(params ?? {});
    if (!parsed.success)
      throw new RpcRequestError(
        rpcError(JsonRpcCode.INVALID_PARAMS, `Invalid params for attach: ${describeIssues(parsed.error)}`),
      );
    try {
      await this.options.attach(parsed.data.room, parsed.data.user);
    } catch (error) {
      throw new RpcRequestError(
        rpcError(
          RoomCode.MEDIA_GENERIC,
          `Could not attach room ${parsed.data.room}: ${error instanceof Error ? error.message : String(error)}`,
        ),
      );
    }
    return controlResults.attach.parse({});
  }
}
