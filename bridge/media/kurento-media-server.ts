/**
 * The MediaServer interface on top of the real `kurento-client` (7.2.0): one
 * connection per KMS, its session across reconnections, and what to do when
 * the server's media is lost. kurento-client itself is loaded only by
 * kurento-adapter.ts; the media objects are in kurento-objects.ts.
 *
 * Connection behaviour (kurento-client quirks handled here):
 * - Requests made while disconnected wait for the socket instead of failing:
 *   every call gets our own timeout (REQUEST_TIMEOUT_MS), calls are refused at
 *   once while disconnected, and objects whose creation answers too late are
 *   released: kurento-client itself waits much longer than we do
 *   (`lateAnswerMs`), or it would drop the late answer and its object would
 *   stay on the server unknown.
 * - After a reconnection kurento-client resumes its session with
 *   `connect {sessionId}`; a refused resume (40007: the server restarted) means
 *   every object is gone, reported as `lost`. It says nothing when that
 *   `connect` goes unanswered: the bridge then drops the socket to try again.
 * - The state is one field with one transition function
 *   (kurento-connection-state.ts).
 */
import {
  hasCapability,
  hasFactory,
  hasLocalReconnectWs,
  invoke,
  invokeObject,
  type KPipeline,
  type KServerManager,
  type KurentoClientInstance,
  type KurentoModule,
  loadKurento,
  releaseQuietly,
} from "./kurento-adapter.ts";
import {
  hasBeenUp,
  INITIAL_KMS_STATE,
  type KmsConnectionEvent,
  type KmsConnectionState,
  publicState,
  transition,
} from "./kurento-connection-state.ts";
import { classify } from "./kurento-errors.ts";
import { type ObjectOwner, PipelineHandle } from "./kurento-objects.ts";
import {
  type MediaServer,
  MediaServerError,
  type MediaServerOptions,
  type MediaServerState,
  type Pipeline,
} from "./media-server.ts";

/** The benchmark drives kurento-client directly through this. */
export { loadKurento };

/**
 * How long kurento-client waits for an answer: three times our own bound.
 * Requests are never retried (kurento-client's max_retries is 0), so this
 * only decides how late an answer may come and still be seen (a KMS frozen
 * for up to twice REQUEST_TIMEOUT_MS after the bridge gave up). Kept a small
 * multiple: an unanswered request (an unsubscribe KMS ignores) is reported,
 * as an 'error' on its object, only when this runs out. A stopped bridge does
 * not wait for it: bridge/main.ts exits explicitly.
 */
export function lateAnswerMs(requestTimeoutMs: number): number {
  return requestTimeoutMs * 3;
}

class KurentoConnection implements MediaServer, ObjectOwner {
  readonly uri: string;
  supportsFilters = false;
  supportsRecording = false;
  supportsSimulcast = false;
  readonly options: MediaServerOptions;
  readonly client: KurentoClientInstance;
  readonly kurento: KurentoModule;
  /** Bumped whenever everything on the server is lost; objects of older generations are dead. */
  generation = 0;
  private connection: KmsConnectionState = INITIAL_KMS_STATE;
  /** Runs while `down` and not yet lost. */
  private lostTimer: NodeJS.Timeout | undefined;
  /** Runs after a socket came back until the session resume is answered. */
  private resumeTimer: NodeJS.Timeout | undefined;
  /** Pipelines given up for lost while the socket was down; released if the old session comes back. */
  private orphans: KPipeline[] = [];
  private readonly live = new Set<PipelineHandle>();
  private readonly waiters = new Set<() => void>();

  constructor(uri: string, options: MediaServerOptions) {
    this.uri = uri;
    this.options = options;
    this.kurento = loadKurento();
    if (!hasLocalReconnectWs()) {
      this.log(
        "warn",
        "kurento-client does not use packages/reconnect-ws (the package.json overrides; run npm install): " +
          "the registry reconnect-ws may crash the process",
      );
    }
    this.client = this.kurento(options.dialUri?.(uri) ?? uri, {
      // Our own bound (`timed`, REQUEST_TIMEOUT_MS) answers the caller; kurento-client keeps waiting
      // well past it, so an answer that comes late (a frozen or overloaded KMS) still reaches its
      // callback and `timed`'s onLate releases what it created. With kurento-client's timeout equal
      // to ours the late answer was dropped ("Response already processed") and the MediaPipeline KMS
      // made stayed on it forever: nobody ever learnt its id.
      request_timeout: lateAnswerMs(options.requestTimeoutMs),
      // Pings keep the old bound: an unanswered one only stops kurento-client's pinging.
      ping_request_timeout: options.requestTimeoutMs,
      response_timeout: options.requestTimeoutMs,
      // kurento-jsonrpc keeps a timer per answered request this long (to drop
      // duplicate answers); at 20 s those timers kept a stopped bridge's process alive.
      duplicates_timeout: 2000,
    });
    const re = this.client._re;
    // An unheard 'error' would kill the process; reconnect-ws only emits it when someone listens.
    re.on("error", (error: unknown) =>
      this.log("debug", "media server socket error", { error: error instanceof Error ? error.message : String(error) }),
    );
    re.on("disconnect", () => this.onSocketDown());
    re.on("connect", () => this.onSocketUp());
    this.client.on("reconnected", (sameSession: unknown) => {
      const from = this.connection;
      if (this.apply({ type: "sessionUp", sameSession: sameSession === true }) !== from) {
        void this.onSessionUp(from, sameSession === true);
      }
    });
  }

  get state(): MediaServerState {
    return publicState(this.connection);
  }

  private log(level: "debug" | "info" | "warn" | "error", msg: string, fields: Record<string, unknown> = {}): void {
    this.options.log?.(level, msg, { kms: this.uri, ...fields });
  }

  /** Applies `event` and the effects of leaving and entering states; returns the new state. */
  private apply(event: KmsConnectionEvent): KmsConnectionState {
    const from = this.connection;
    const to = transition(from, event);
    if (to === from) return to;
    this.connection = to;
    if (from.kind === "down" && to.kind !== "down") clearTimeout(this.lostTimer);
    if (to.kind === "starting" || to.kind === "closed") clearTimeout(this.resumeTimer);
    if (to.kind === "connected" || to.kind === "closed") for (const wake of [...this.waiters]) wake();
    const before = publicState(from);
    const after = publicState(to);
    // `closed` is the bridge's own doing: no listener call.
    if (before !== after && after !== "closed") this.options.listeners.state?.(after);
    return to;
  }

  private onSocketUp(): void {
    const from = this.connection;
    this.apply({ type: "socketUp" });
    // First connection: ready once the session answers.
    if (!hasBeenUp(from)) {
      void this.onSessionUp(from, true);
      return;
    }
    // Later ones wait for kurento-client's `connect {sessionId}` outcome (`reconnected`),
    // about which it says nothing when unanswered: then try the connection again.
    clearTimeout(this.resumeTimer);
    this.resumeTimer = setTimeout(() => {
      const kind = this.connection.kind;
      if (kind !== "connected" && kind !== "closed") {
        this.log("warn", "the media server did not answer the session resume; reconnecting");
        this.client._re._connection?.destroy();
      }
    }, this.options.requestTimeoutMs + 1000);
    this.resumeTimer.unref();
  }

  private onSocketDown(): void {
    const from = this.connection;
    if (this.apply({ type: "socketDown" }) === from) return;
    this.log("warn", "lost the connection to the media server; reconnecting");
    clearTimeout(this.lostTimer);
    this.lostTimer = setTimeout(() => {
      const before = this.connection;
      if (this.apply({ type: "lostTimeout" }) !== before) {
        this.declareLost(`the media server connection has been down for ${this.options.lostAfterMs} ms`, true);
      }
    }, this.options.lostAfterMs);
    this.lostTimer.unref();
  }

  /** The session is up (`from`: the state before): settle what was lost, read capabilities, then ready. */
  private async onSessionUp(from: KmsConnectionState, sameSession: boolean): Promise<void> {
    if (!hasBeenUp(from)) {
      // the first session: nothing to settle
    } else if (!sameSession) {
      this.orphans = []; // a new server process: the old objects went with the old one
      const alreadyLost = from.kind === "down" && from.lost;
      if (!alreadyLost) this.declareLost("the media server restarted: its media objects are gone", false);
    } else if (this.orphans.length) {
      const orphans = this.orphans;
      this.orphans = [];
      const pipelines = orphans.length;
      this.log("info", "the old media session came back; releasing the media given up for lost", { pipelines });
      for (const pipeline of orphans) releaseQuietly(pipeline);
    }
    try {
      await this.refreshCapabilities();
    } catch (error) {
      this.log("warn", "could not read the media server's capabilities", { error: classify(error, "getInfo").message });
    }
    if (this.connection.kind !== "starting") return;
    this.log("info", "connected to the media server", {
      filters: this.supportsFilters,
      recording: this.supportsRecording,
      simulcast: this.supportsSimulcast,
      session: this.safeSessionId(),
    });
    this.apply({ type: "ready" });
  }

  private safeSessionId(): string | undefined {
    try {
      return this.client.sessionId;
    } catch {
      return undefined;
    }
  }

  private async refreshCapabilities(): Promise<void> {
    // getServerManager hands out a copy (no events are listened to on it).
    const { object: manager } = await this.timed(
      invokeObject<KServerManager>((callback) => this.client.getServerManager(callback)),
      "getServerManager",
    );
    const info = await this.timed(
      invoke((callback) => manager.getInfo(callback)),
      "getInfo",
    );
    const filters = hasFactory(info, "FaceOverlayFilter");
    if (filters !== undefined) this.supportsFilters = filters;
    const recording = hasFactory(info, "RecorderEndpoint");
    if (recording !== undefined) this.supportsRecording = recording;
    const simulcast = hasCapability(info, "simulcast");
    if (simulcast !== undefined) this.supportsSimulcast = simulcast;
  }

  private declareLost(reason: string, mayComeBack: boolean): void {
    this.generation += 1;
    if (mayComeBack) this.orphans.push(...[...this.live].map((handle) => handle.k));
    for (const handle of this.live) handle.dead = true;
    this.live.clear();
    this.log("warn", "media on this server is lost", { reason });
    this.options.listeners.lost?.(reason);
  }

  forget(handle: PipelineHandle): void {
    this.live.delete(handle);
  }

  orphan(k: KPipeline): void {
    this.orphans.push(k);
  }

  whenConnected(timeoutMs: number): Promise<void> {
    if (this.connection.kind === "connected") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new MediaServerError("unreachable", `media server ${this.uri} not reachable within ${timeoutMs} ms`));
      }, timeoutMs);
      const wake = (): void => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      this.waiters.add(wake);
    });
  }

  ensureUsable(generation: number, what: string): void {
    const kind = this.connection.kind;
    if (kind === "closed") {
      throw new MediaServerError("unreachable", `${what}: the bridge closed its connection to ${this.uri}`);
    }
    if (generation !== this.generation) {
      const why = "the media server lost this object (it restarted or the connection dropped)";
      throw new MediaServerError("gone", `${what}: ${why}`);
    }
    if (kind !== "connected") {
      throw new MediaServerError("unreachable", `${what}: no connection to the media server ${this.uri}`);
    }
  }

  timed<T>(promise: Promise<T>, what: string, onLate?: (value: T) => void): Promise<T> {
    const ms = this.options.requestTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        reject(new MediaServerError("timeout", `${what}: no answer from the media server ${this.uri} within ${ms} ms`));
      }, ms);
      promise.then(
        (value) => {
          if (done) {
            onLate?.(value);
            return;
          }
          done = true;
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          reject(classify(error, what));
        },
      );
    });
  }

  async createPipeline(): Promise<Pipeline> {
    const generation = this.generation;
    this.ensureUsable(generation, "create MediaPipeline");
    const { object: k } = await this.timed(
      invokeObject<KPipeline>((callback) => this.client.create("MediaPipeline", callback)),
      "create MediaPipeline",
      (late) => releaseQuietly(late.object),
    );
    const handle = new PipelineHandle(this, k, generation);
    if (generation !== this.generation) {
      releaseQuietly(k);
      throw new MediaServerError("gone", "create MediaPipeline: the media server was lost meanwhile");
    }
    this.live.add(handle);
    return handle;
  }

  async close(): Promise<void> {
    if (this.connection.kind === "closed") return;
    this.apply({ type: "close" });
    clearTimeout(this.lostTimer);
    clearTimeout(this.resumeTimer);
    try {
      this.client.close();
    } catch {
      // already closing
    }
    // close() waits for the last request before disconnecting; a request to a dead server would keep it reconnecting.
    this.client._re.disconnect();
  }
}

/** Connects (in the background, retrying forever) to a Kurento media server. */
export function connectKurentoMediaServer(uri: string, options: MediaServerOptions): MediaServer {
  return new KurentoConnection(uri, options);
}
