/**
 * The MediaServer interface on top of the real `kurento-client` (7.2.0).
 * THE ONLY FILE THAT LOADS kurento-client (DESIGN §8).
 *
 * kurento-client quirks handled here (docs/bridge.md lists them too):
 * - Its registry `reconnect-ws@0.1.0` stack crashes plain Node on the first
 *   frame; reconnect-ws.ts replaces it through the CommonJS cache.
 * - A failed `subscribe`/`unsubscribe` (sent when the first listener of an
 *   event is added / the last removed, and for every event when an object is
 *   released) emits `'error'` on the media object; `.on('error')` throws
 *   (`'error'` is not a Kurento event name) and `release()` removes every
 *   listener anyway, so such a failure (KMS gone, or refusing to unsubscribe
 *   from a released object) would kill the process: `guardObject` wraps the
 *   object's own `emit` so an unheard `'error'` is logged instead.
 * - Media objects are thenable: a promise resolved with one gets a *copy*
 *   (`disguise.unthenable`) that shares the listener table by accident. The
 *   bridge takes objects from callbacks, boxed, and keeps the originals.
 * - Explicit transactions are broken on Node ≥ 20: never used.
 * - Requests made while disconnected wait for the socket instead of failing:
 *   every call gets our own timeout (REQUEST_TIMEOUT_MS), calls are refused at
 *   once while disconnected, and objects whose creation answers too late are
 *   released.
 * - After a reconnection kurento-client resumes its session with
 *   `connect {sessionId}`; a refused resume (40007: the server restarted) means
 *   every object is gone, reported as `lost`.
 */
import { createRequire } from "node:module";
import path from "node:path";
import { z } from "zod";
import {
  type Bandwidth,
  type FaceOverlayOptions,
  type IceCandidate,
  type MediaElement,
  type MediaServer,
  MediaServerError,
  type MediaServerOptions,
  type MediaServerState,
  type Pipeline,
  type WebRtcEndpoint,
} from "./media-server.ts";
import { type ReconnectingKurentoSocket, reconnectWs } from "./reconnect-ws.ts";

// ── the untyped CommonJS package, described as far as the bridge uses it ────

type Listener = (event: Record<string, unknown>) => void;
/** Every call gets a callback: without one, kurento-client `console.trace`s each failure. */
type Callback = (error: unknown, result?: unknown) => void;

interface KObject {
  readonly id: string;
  release(callback: Callback): unknown;
  on(event: string, listener: Listener): unknown;
  listeners(event: string): Array<(...args: unknown[]) => void>;
  removeAllListeners(event: string): unknown;
}
interface KElement extends KObject {
  connect(sink: KElement, callback: Callback): unknown;
  disconnect(sink: KElement, callback: Callback): unknown;
}
interface KWebRtcEndpoint extends KElement {
  processOffer(offer: string, callback: Callback): unknown;
  gatherCandidates(callback: Callback): unknown;
  addIceCandidate(candidate: unknown, callback: Callback): unknown;
  setMaxVideoRecvBandwidth(kbps: number, callback: Callback): unknown;
  setMinVideoRecvBandwidth(kbps: number, callback: Callback): unknown;
  setMaxVideoSendBandwidth(kbps: number, callback: Callback): unknown;
  setMinVideoSendBandwidth(kbps: number, callback: Callback): unknown;
}
interface KFaceOverlayFilter extends KElement {
  setOverlayedImage(uri: string, offsetXPercent: number, offsetYPercent: number, widthPercent: number, heightPercent: number, callback: Callback): unknown;
}
interface KPipeline extends KObject {
  create(type: string, params: Record<string, unknown>, callback: Callback): unknown;
}
interface KServerManager extends KObject {
  getInfo(callback: Callback): unknown;
}
export interface KurentoClientInstance {
  readonly sessionId: string;
  create(type: "MediaPipeline", callback: Callback): unknown;
  getServerManager(callback: Callback): unknown;
  close(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  readonly _re: ReconnectingKurentoSocket;
}
export interface KurentoModule {
  (uri: string, options?: Record<string, unknown>): KurentoClientInstance;
  getComplexType(name: "IceCandidate"): (value: { candidate: string; sdpMid: string; sdpMLineIndex: number }) => unknown;
}

const require = createRequire(import.meta.url);
let kurentoModule: KurentoModule | undefined;

/**
 * kurento-client with our reconnect-ws. Exported for the benchmark, which
 * drives kurento-client directly as the baseline; the bridge itself only
 * uses `connectKurentoMediaServer`.
 */
export function loadKurento(): KurentoModule {
  if (kurentoModule) return kurentoModule;
  const main = require.resolve("kurento-client");
  const kurentoRequire = createRequire(main);
  const reconnectPath = kurentoRequire.resolve("reconnect-ws");
  const cached = require.cache[main];
  if (!cached) {
    // Must be in place before KurentoClient.js runs `require('reconnect-ws')`.
    const Module = require("node:module") as { new (id: string): NodeJS.Module };
    const shim = new Module(reconnectPath);
    shim.filename = reconnectPath;
    shim.loaded = true;
    shim.exports = reconnectWs;
    shim.paths = [path.join(path.dirname(reconnectPath), "node_modules")];
    require.cache[reconnectPath] = shim;
  }
  kurentoModule = require("kurento-client") as KurentoModule;
  return kurentoModule;
}

/** True when kurento-client was loaded (by someone else) before our reconnect-ws could be put in place. */
export function usesOriginalReconnectWs(): boolean {
  return require.cache[createRequire(require.resolve("kurento-client")).resolve("reconnect-ws")]?.exports !== reconnectWs;
}

/** A kurento-client call, callback style, as a promise. */
function invoke<T = void>(run: (callback: Callback) => unknown): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      run((error, result) => (error ? reject(error) : resolve(result as T)));
    } catch (error) {
      reject(error);
    }
  });
}

/** Like `invoke` for calls that give a media object: boxed, so no promise unwraps the (thenable) object into a copy. */
function invokeObject<T extends KObject>(run: (callback: Callback) => unknown): Promise<{ readonly object: T }> {
  return new Promise<{ readonly object: T }>((resolve, reject) => {
    try {
      run((error, result) => (error ? reject(error) : resolve({ object: result as T })));
    } catch (error) {
      reject(error);
    }
  });
}

function releaseQuietly(object: KObject): void {
  void invoke((callback) => object.release(callback)).catch(() => undefined);
}

// ── error mapping ────────────────────────────────────────────────────────────

const KURENTO_TYPE_NOT_FOUND = 40100;
const KURENTO_OBJECT_NOT_FOUND = 40101;

function classify(error: unknown, what: string): MediaServerError {
  if (error instanceof MediaServerError) return error;
  const code = typeof error === "object" && error !== null && typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : undefined;
  const message = error instanceof Error ? error.message : typeof error === "string" ? error : JSON.stringify(error) ?? String(error);
  const text = `${what}: ${message}`;
  if (code === KURENTO_TYPE_NOT_FOUND) return new MediaServerError("unsupported", text, code);
  if (code === KURENTO_OBJECT_NOT_FOUND) return new MediaServerError("gone", text, code);
  if (code !== undefined && code >= 40200 && code < 40300) return new MediaServerError("sdp", text, code);
  if (code === 40005) return new MediaServerError("sdp", text, code);
  if (code !== undefined && code >= 40400 && code < 40500) return new MediaServerError("ice", text, code);
  if (/timed out/i.test(message)) return new MediaServerError("timeout", text, code);
  if (/connection error|disconnected/i.test(message)) return new MediaServerError("unreachable", text, code);
  return new MediaServerError("other", text, code);
}

/**
 * Makes an `'error'` nobody listens to harmless on a kurento-client media
 * object: its own `emit` (which `release()` leaves alone) hands it to
 * `onError` instead of throwing.
 */
function guardObject(object: KObject, onError: (error: unknown) => void): void {
  const emitter = object as unknown as NodeJS.EventEmitter;
  // A copy made by kurento-client's `unthenable` has a fixed `emit`; the bridge only guards originals.
  if (Object.getOwnPropertyDescriptor(emitter, "emit")?.configurable === false) return;
  const emit = emitter.emit;
  Object.defineProperty(emitter, "emit", {
    configurable: true,
    writable: true,
    value: function guardedEmit(this: NodeJS.EventEmitter, event: string | symbol, ...args: unknown[]): boolean {
      if (event === "error" && this.listenerCount("error") === 0) {
        onError(args[0]);
        return false;
      }
      return emit.call(this, event, ...args);
    },
  });
}

const iceCandidateEvent = z.object({
  candidate: z.object({ candidate: z.string(), sdpMid: z.string().nullish(), sdpMLineIndex: z.number().int() }),
});
const mediaStateEvent = z.object({ newState: z.string() });
const errorEvent = z.object({ description: z.string().optional(), errorCode: z.number().optional(), type: z.string().optional() }).loose();
const serverInfo = z.object({
  modules: z.array(z.object({ name: z.string(), factories: z.array(z.string()).optional() }).loose()),
}).loose();

function describeError(event: Record<string, unknown>): string {
  const parsed = errorEvent.safeParse(event);
  if (!parsed.success) return "media server error";
  const { description, errorCode, type } = parsed.data;
  return [type, description, errorCode === undefined ? undefined : `(code ${errorCode})`].filter(Boolean).join(": ") || "media server error";
}

// ── the connection ──────────────────────────────────────────────────────────

class KurentoConnection implements MediaServer {
  readonly uri: string;
  state: MediaServerState = "connecting";
  supportsFilters = false;
  readonly options: MediaServerOptions;
  readonly client: KurentoClientInstance;
  readonly kurento: KurentoModule;
  /** Bumped whenever everything on the server is lost; objects of older generations are dead. */
  generation = 0;
  private lostTimer: NodeJS.Timeout | undefined;
  private resumeTimer: NodeJS.Timeout | undefined;
  private lostDeclared = false;
  private everConnected = false;
  /** Pipelines given up for lost while the socket was down; released if the old session comes back. */
  private orphans: KPipeline[] = [];
  private readonly live = new Set<PipelineHandle>();
  private readonly waiters = new Set<() => void>();

  constructor(uri: string, options: MediaServerOptions) {
    this.uri = uri;
    this.options = options;
    this.kurento = loadKurento();
    if (usesOriginalReconnectWs()) {
      this.log("warn", "kurento-client was loaded before the bridge could give it its ws@8 reconnect-ws; in plain Node the registry one may crash the process");
    }
    this.client = this.kurento(uri, {
      request_timeout: options.requestTimeoutMs,
      response_timeout: options.requestTimeoutMs,
      // kurento-jsonrpc keeps a timer per answered request this long (to drop
      // duplicate answers); at 20 s those timers kept a stopped bridge's process alive.
      duplicates_timeout: 2000,
    });
    const re = this.client._re;
    re.on("error", (error: unknown) => this.log("debug", "media server socket error", { error: error instanceof Error ? error.message : String(error) }));
    re.on("disconnect", () => this.onSocketDown());
    re.on("connect", () => {
      // First connection: ready once the session answers. Later ones: wait for
      // kurento-client's `connect {sessionId}` outcome (`reconnected`).
      if (!this.everConnected) {
        void this.onSessionUp(true);
        return;
      }
      // kurento-client says nothing when that `connect` goes unanswered: try the connection again.
      clearTimeout(this.resumeTimer);
      this.resumeTimer = setTimeout(() => {
        if (this.state !== "connected" && this.state !== "closed") {
          this.log("warn", "the media server did not answer the session resume; reconnecting");
          re.dropConnection();
        }
      }, this.options.requestTimeoutMs + 1000);
      this.resumeTimer.unref();
    });
    this.client.on("reconnected", (sameSession: unknown) => void this.onSessionUp(sameSession === true));
  }

  private log(level: "debug" | "info" | "warn" | "error", msg: string, fields: Record<string, unknown> = {}): void {
    this.options.log?.(level, msg, { kms: this.uri, ...fields });
  }

  private setState(state: MediaServerState): void {
    if (this.state === state || this.state === "closed") return;
    this.state = state;
    this.options.listeners.state?.(state);
    if (state === "connected") for (const wake of [...this.waiters]) wake();
  }

  private onSocketDown(): void {
    if (this.state !== "connected") return;
    this.log("warn", "lost the connection to the media server; reconnecting");
    this.setState("disconnected");
    clearTimeout(this.lostTimer);
    this.lostTimer = setTimeout(() => {
      if (this.state === "disconnected") this.declareLost(`the media server connection has been down for ${this.options.lostAfterMs} ms`, true);
    }, this.options.lostAfterMs);
    this.lostTimer.unref();
  }

  private async onSessionUp(sameSession: boolean): Promise<void> {
    if (this.state === "closed") return;
    clearTimeout(this.lostTimer);
    clearTimeout(this.resumeTimer);
    if (!this.everConnected) {
      this.everConnected = true;
    } else if (!sameSession) {
      this.orphans = []; // a new server process: the old objects went with the old one
      if (!this.lostDeclared) this.declareLost("the media server restarted: its media objects are gone", false);
    } else if (this.orphans.length) {
      const orphans = this.orphans;
      this.orphans = [];
      this.log("info", "the old media session came back; releasing the media given up for lost", { pipelines: orphans.length });
      for (const pipeline of orphans) releaseQuietly(pipeline);
    }
    this.lostDeclared = false;
    try {
      await this.refreshCapabilities();
    } catch (error) {
      this.log("warn", "could not read the media server's capabilities", { error: classify(error, "getInfo").message });
    }
    this.log("info", "connected to the media server", { filters: this.supportsFilters, session: this.safeSessionId() });
    this.setState("connected");
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
    const { object: manager } = await this.timed(invokeObject<KServerManager>((callback) => this.client.getServerManager(callback)), "getServerManager");
    const info = serverInfo.safeParse(await this.timed(invoke((callback) => manager.getInfo(callback)), "getInfo"));
    if (!info.success) return;
    this.supportsFilters = info.data.modules.some((module) =>
      (module.factories ?? []).some((factory) => factory === "FaceOverlayFilter" || factory.endsWith(".FaceOverlayFilter")),
    );
  }

  private declareLost(reason: string, mayComeBack: boolean): void {
    this.lostDeclared = true;
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

  /** A pipeline released while the socket is down: release it if the session comes back. */
  orphan(k: KPipeline): void {
    this.orphans.push(k);
  }

  whenConnected(timeoutMs: number): Promise<void> {
    if (this.state === "connected") return Promise.resolve();
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

  /** Refuses at once while disconnected; otherwise bounds the call by the request timeout. */
  ensureUsable(generation: number, what: string): void {
    if (this.state === "closed") throw new MediaServerError("unreachable", `${what}: the bridge closed its connection to ${this.uri}`);
    if (generation !== this.generation) throw new MediaServerError("gone", `${what}: the media server lost this object (it restarted or the connection dropped)`);
    if (this.state !== "connected") throw new MediaServerError("unreachable", `${what}: no connection to the media server ${this.uri}`);
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
    const { object: k } = await this.timed(invokeObject<KPipeline>((callback) => this.client.create("MediaPipeline", callback)), "create MediaPipeline", (late) => releaseQuietly(late.object));
    const handle = new PipelineHandle(this, k, generation);
    if (generation !== this.generation) {
      releaseQuietly(k);
      throw new MediaServerError("gone", "create MediaPipeline: the media server was lost meanwhile");
    }
    this.live.add(handle);
    return handle;
  }

  async close(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "closed";
    clearTimeout(this.lostTimer);
    clearTimeout(this.resumeTimer);
    for (const wake of [...this.waiters]) wake();
    try {
      this.client.close();
    } catch {
      // already closing
    }
    // close() waits for the last request before disconnecting; a request to a dead server would keep it reconnecting.
    this.client._re.disconnect();
  }
}

class ElementHandle implements MediaElement {
  readonly k: KElement;
  readonly connection: KurentoConnection;
  readonly generation: number;
  readonly type: string;
  released = false;

  constructor(connection: KurentoConnection, k: KElement, generation: number, type: string) {
    this.connection = connection;
    this.k = k;
    this.generation = generation;
    this.type = type;
    guardObject(k, (error) => connection.options.log?.("debug", "kurento-client object error", { type, error: classify(error, type).message }));
  }

  get id(): string {
    return this.k.id;
  }

  call<T = void>(what: string, run: (callback: Callback) => unknown): Promise<T> {
    this.connection.ensureUsable(this.generation, `${this.type}.${what}`);
    return this.connection.timed(invoke<T>(run), `${this.type}.${what}`);
  }

  connect(sink: MediaElement): Promise<void> {
    const target = unwrap(sink);
    return this.call("connect", (callback) => this.k.connect(target, callback));
  }

  disconnect(sink: MediaElement): Promise<void> {
    const target = unwrap(sink);
    return this.call("disconnect", (callback) => this.k.disconnect(target, callback));
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.generation !== this.connection.generation || this.connection.state !== "connected") return;
    try {
      await this.connection.timed(invoke((callback) => this.k.release(callback)), `${this.type}.release`);
    } catch (error) {
      const failure = classify(error, "release");
      if (failure.failure !== "gone") this.connection.options.log?.("debug", "release failed", { type: this.type, error: failure.message });
    }
  }

  onError(listener: (description: string) => void): void {
    this.k.on("Error", (event) => listener(describeError(event)));
  }
}

function unwrap(element: MediaElement): KElement {
  if (!(element instanceof ElementHandle)) throw new MediaServerError("other", "connect: the sink is not an element of this media server");
  return element.k;
}

class WebRtcHandle extends ElementHandle implements WebRtcEndpoint {
  declare readonly k: KWebRtcEndpoint;

  processOffer(offer: string): Promise<string> {
    return this.call<string>("processOffer", (callback) => this.k.processOffer(offer, callback));
  }

  gatherCandidates(): Promise<void> {
    return this.call("gatherCandidates", (callback) => this.k.gatherCandidates(callback));
  }

  addIceCandidate(candidate: IceCandidate): Promise<void> {
    const value = this.connection.kurento.getComplexType("IceCandidate")({
      candidate: candidate.candidate,
      sdpMid: candidate.sdpMid ?? "",
      sdpMLineIndex: candidate.sdpMLineIndex,
    });
    return this.call("addIceCandidate", (callback) => this.k.addIceCandidate(value, callback));
  }

  async setBandwidth(bandwidth: Bandwidth): Promise<void> {
    const k = this.k;
    await Promise.all([
      this.call("setMaxVideoRecvBandwidth", (callback) => k.setMaxVideoRecvBandwidth(bandwidth.maxVideoRecvKbps, callback)),
      this.call("setMinVideoRecvBandwidth", (callback) => k.setMinVideoRecvBandwidth(bandwidth.minVideoRecvKbps, callback)),
      this.call("setMaxVideoSendBandwidth", (callback) => k.setMaxVideoSendBandwidth(bandwidth.maxVideoSendKbps, callback)),
      this.call("setMinVideoSendBandwidth", (callback) => k.setMinVideoSendBandwidth(bandwidth.minVideoSendKbps, callback)),
    ]);
  }

  onIceCandidate(listener: (candidate: IceCandidate) => void): void {
    this.k.on("IceCandidateFound", (event) => {
      const parsed = iceCandidateEvent.safeParse(event);
      if (!parsed.success) return;
      const { candidate, sdpMid, sdpMLineIndex } = parsed.data.candidate;
      listener({ candidate, sdpMid: sdpMid ?? null, sdpMLineIndex });
    });
  }

  onMediaState(listener: (state: string) => void): void {
    this.k.on("MediaStateChanged", (event) => {
      const parsed = mediaStateEvent.safeParse(event);
      if (parsed.success) listener(parsed.data.newState);
    });
  }
}

class PipelineHandle implements Pipeline {
  readonly connection: KurentoConnection;
  readonly k: KPipeline;
  readonly generation: number;
  dead = false;
  released = false;

  constructor(connection: KurentoConnection, k: KPipeline, generation: number) {
    this.connection = connection;
    this.k = k;
    this.generation = generation;
    guardObject(k, (error) => connection.options.log?.("debug", "kurento-client object error", { type: "MediaPipeline", error: classify(error, "MediaPipeline").message }));
  }

  get id(): string {
    return this.k.id;
  }

  /** Boxed: an async function returning the (thenable) object itself would hand out a copy. */
  private async create(type: string, params?: Record<string, unknown>): Promise<{ readonly object: KElement }> {
    if (this.released) throw new MediaServerError("gone", `create ${type}: the pipeline was released`);
    this.connection.ensureUsable(this.generation, `create ${type}`);
    const box = await this.connection.timed(invokeObject<KElement>((callback) => this.k.create(type, params ?? {}, callback)), `create ${type}`, (late) => releaseQuietly(late.object));
    if (this.released || this.generation !== this.connection.generation) {
      releaseQuietly(box.object);
      throw new MediaServerError("gone", `create ${type}: the pipeline went away meanwhile`);
    }
    return box;
  }

  async createWebRtcEndpoint(options: { readonly dataChannels: boolean }): Promise<WebRtcEndpoint> {
    const { object } = await this.create("WebRtcEndpoint", options.dataChannels ? { useDataChannels: true } : undefined);
    return new WebRtcHandle(this.connection, object, this.generation, "WebRtcEndpoint");
  }

  async createPassThrough(): Promise<MediaElement> {
    const { object } = await this.create("PassThrough");
    return new ElementHandle(this.connection, object, this.generation, "PassThrough");
  }

  async createFaceOverlayFilter(options: FaceOverlayOptions): Promise<MediaElement> {
    const k = (await this.create("FaceOverlayFilter")).object as KFaceOverlayFilter;
    const handle = new ElementHandle(this.connection, k, this.generation, "FaceOverlayFilter");
    try {
      await handle.call("setOverlayedImage", (callback) => k.setOverlayedImage(options.imageUrl, options.offsetX, options.offsetY, options.width, options.height, callback));
    } catch (error) {
      await handle.release();
      throw error;
    }
    return handle;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.connection.forget(this);
    if (this.dead || this.generation !== this.connection.generation) return;
    if (this.connection.state !== "connected") {
      this.connection.orphan(this.k);
      return;
    }
    try {
      await this.connection.timed(invoke((callback) => this.k.release(callback)), "MediaPipeline.release");
    } catch (error) {
      const failure = classify(error, "release");
      if (failure.failure !== "gone") this.connection.options.log?.("debug", "pipeline release failed", { error: failure.message });
    }
  }

  onError(listener: (description: string) => void): void {
    this.k.on("Error", (event) => listener(describeError(event)));
  }
}

/** Connects (in the background, retrying forever) to a Kurento media server. */
export function connectKurentoMediaServer(uri: string, options: MediaServerOptions): MediaServer {
  return new KurentoConnection(uri, options);
}
