/**
 * The adapter: THE ONLY FILE THAT LOADS kurento-client (7.2.0), so its
 * untyped CommonJS surface, its quirks and its error shapes stay in
 * bridge/media/kurento-*.ts and the rest of the bridge only knows the
 * MediaServer interface of media-server.ts.
 *
 * kurento-client quirks handled here and in kurento-objects.ts /
 * kurento-media-server.ts (docs/bridge.md lists them too):
 * - Its transport is `reconnect-ws`; the package.json `overrides` put our
 *   ws@8 one (packages/reconnect-ws) in place of the registry 0.1.0, whose
 *   ws@0.7 crashes plain Node on the first frame. `hasLocalReconnectWs` tells
 *   whether that happened (an install without the overrides).
 * - A failed `subscribe`/`unsubscribe` (sent when the first listener of an
 *   event is added / the last removed, and for every event when an object is
 *   released) emits `'error'` on the media object; `.on('error')` throws
 *   (`'error'` is not a Kurento event name) and `release()` removes every
 *   listener anyway, so such a failure (KMS gone, or refusing to unsubscribe
 *   from a released object) would kill the process: `guardObject` wraps the
 *   object's own `emit` so an unheard `'error'` is logged instead.
 * - Media objects are thenable: a promise resolved with one gets a *copy*
 *   (`disguise.unthenable`) that shares the listener table by accident. The
 *   bridge takes objects from callbacks, boxed (`invokeObject`), and keeps
 *   the originals.
 * - Every failed call without a callback is `console.trace`d: every call
 *   here gets one.
 * - Explicit transactions are broken on Node ≥ 20: never used.
 */
import { createRequire } from "node:module";
import { z } from "zod";
import type { IceCandidate } from "./media-server.ts";

// ── the untyped CommonJS package, described as far as the bridge uses it ────

export type Listener = (event: Record<string, unknown>) => void;
/** Every call gets a callback: without one, kurento-client `console.trace`s each failure. */
export type Callback = (error: unknown, result?: unknown) => void;

export interface KObject {
  readonly id: string;
  release(callback: Callback): unknown;
  on(event: string, listener: Listener): unknown;
  listeners(event: string): Array<(...args: unknown[]) => void>;
  removeAllListeners(event: string): unknown;
}
export interface KElement extends KObject {
  connect(sink: KElement, callback: Callback): unknown;
  /** One media type only (`"AUDIO"`, `"VIDEO"`); kurento-client shifts its optional arguments. */
  connect(sink: KElement, mediaType: string, callback: Callback): unknown;
  disconnect(sink: KElement, callback: Callback): unknown;
}
export interface KWebRtcEndpoint extends KElement {
  processOffer(offer: string, callback: Callback): unknown;
  gatherCandidates(callback: Callback): unknown;
  addIceCandidate(candidate: unknown, callback: Callback): unknown;
  setMaxVideoRecvBandwidth(kbps: number, callback: Callback): unknown;
  setMinVideoRecvBandwidth(kbps: number, callback: Callback): unknown;
  setMaxVideoSendBandwidth(kbps: number, callback: Callback): unknown;
  setMinVideoSendBandwidth(kbps: number, callback: Callback): unknown;
  setStunServerAddress(address: string, callback: Callback): unknown;
  setStunServerPort(port: number, callback: Callback): unknown;
  setTurnUrl(url: string, callback: Callback): unknown;
  /**
   * kurento-client's generic invocation (`MediaObject._invoke`), for operations its generated
   * classes do not know: the embedded server's `setVideoQuality`.
   */
  _invoke(transaction: undefined, method: string, params: Record<string, unknown>, callback: Callback): unknown;
}
export interface KFaceOverlayFilter extends KElement {
  setOverlayedImage(
    uri: string,
    offsetXPercent: number,
    offsetYPercent: number,
    widthPercent: number,
    heightPercent: number,
    callback: Callback,
  ): unknown;
}
/**
 * RecorderEndpoint (kms-elements). `stopAndWait` answers once the file is
 * complete; plain `stop` answers at once and leaves KMS finishing the file
 * while the bridge may already release the recorder (a file without its
 * index), so the bridge only uses `stopAndWait`.
 */
export interface KRecorderEndpoint extends KElement {
  record(callback: Callback): unknown;
  stopAndWait(callback: Callback): unknown;
}
export interface KPipeline extends KObject {
  create(type: string, params: Record<string, unknown>, callback: Callback): unknown;
}
export interface KServerManager extends KObject {
  getInfo(callback: Callback): unknown;
}
/** kurento-client's `_re`: the reconnect-ws emitter (packages/reconnect-ws documents it). */
export interface ReconnectEmitter {
  readonly connected: boolean;
  /** The current connection; `destroy()` drops it and the emitter dials again. */
  readonly _connection?: { destroy(): void };
  on(event: "error" | "disconnect" | "connect", listener: (...args: unknown[]) => void): unknown;
  disconnect(): unknown;
}
export interface KurentoClientInstance {
  readonly sessionId: string;
  create(type: "MediaPipeline", callback: Callback): unknown;
  getServerManager(callback: Callback): unknown;
  close(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  readonly _re: ReconnectEmitter;
}
export interface KurentoModule {
  (uri: string, options?: Record<string, unknown>): KurentoClientInstance;
  getComplexType(
    name: "IceCandidate",
  ): (value: { candidate: string; sdpMid: string; sdpMLineIndex: number }) => unknown;
}

const require = createRequire(import.meta.url);
let kurentoModule: KurentoModule | undefined;

/**
 * kurento-client, loaded once. Exported for the benchmark, which drives
 * kurento-client directly as the baseline; the bridge itself only uses
 * `connectKurentoMediaServer`.
 */
export function loadKurento(): KurentoModule {
  kurentoModule ??= require("kurento-client") as KurentoModule;
  return kurentoModule;
}

/** Whether kurento-client resolves `reconnect-ws` to packages/reconnect-ws (the package.json overrides). */
export function hasLocalReconnectWs(): boolean {
  try {
    const fromKurento = createRequire(require.resolve("kurento-client"));
    return (fromKurento("reconnect-ws") as { transport?: unknown }).transport === "ws8";
  } catch {
    return false;
  }
}

/** A kurento-client call, callback style, as a promise. */
export function invoke<T = void>(run: (callback: Callback) => unknown): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      run((error, result) => (error ? reject(error) : resolve(result as T)));
    } catch (error) {
      reject(error);
    }
  });
}

/** Like `invoke` for calls that give a media object: boxed, so no promise unwraps the (thenable) object into a copy. */
export function invokeObject<T extends KObject>(run: (callback: Callback) => unknown): Promise<{ readonly object: T }> {
  return new Promise<{ readonly object: T }>((resolve, reject) => {
    try {
      run((error, result) => (error ? reject(error) : resolve({ object: result as T })));
    } catch (error) {
      reject(error);
    }
  });
}

export function releaseQuietly(object: KObject): void {
  void invoke((callback) => object.release(callback)).catch(() => undefined);
}

/**
 * Makes an `'error'` nobody listens to harmless on a kurento-client media
 * object: its own `emit` (which `release()` leaves alone) hands it to
 * `onError` instead of throwing.
 */
export function guardObject(object: KObject, onError: (error: unknown) => void): void {
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

/** kurento-client's IceCandidate complex type for `addIceCandidate`. */
export function toKurentoCandidate(kurento: KurentoModule, candidate: IceCandidate): unknown {
  return kurento.getComplexType("IceCandidate")({
    candidate: candidate.candidate,
    sdpMid: candidate.sdpMid ?? "",
    sdpMLineIndex: candidate.sdpMLineIndex,
  });
}

// ── event payloads (KMS sends them; validated, never trusted) ───────────────

const iceCandidateEvent = z.object({
  candidate: z.object({ candidate: z.string(), sdpMid: z.string().nullish(), sdpMLineIndex: z.number().int() }),
});
const mediaStateEvent = z.object({ newState: z.string() });
const errorEvent = z
  .object({ description: z.string().optional(), errorCode: z.number().optional(), type: z.string().optional() })
  .loose();
const serverInfo = z
  .object({ modules: z.array(z.object({ name: z.string(), factories: z.array(z.string()).optional() }).loose()) })
  .loose();

/** An `IceCandidateFound` event's candidate, or undefined when malformed. */
export function parseIceCandidateEvent(event: Record<string, unknown>): IceCandidate | undefined {
  const parsed = iceCandidateEvent.safeParse(event);
  if (!parsed.success) return undefined;
  const { candidate, sdpMid, sdpMLineIndex } = parsed.data.candidate;
  return { candidate, sdpMid: sdpMid ?? null, sdpMLineIndex };
}

/** A `MediaStateChanged` event's new state, or undefined when malformed. */
export function parseMediaStateEvent(event: Record<string, unknown>): string | undefined {
  const parsed = mediaStateEvent.safeParse(event);
  return parsed.success ? parsed.data.newState : undefined;
}

/** An `Error` event as one line of text. */
export function describeError(event: Record<string, unknown>): string {
  const parsed = errorEvent.safeParse(event);
  if (!parsed.success) return "media server error";
  const { description, errorCode, type } = parsed.data;
  const code = errorCode === undefined ? undefined : `(code ${errorCode})`;
  return [type, description, code].filter(Boolean).join(": ") || "media server error";
}

/** Whether `ServerManager.getInfo()` lists the factory `name` (plain or module-qualified); undefined when malformed. */
export function hasFactory(info: unknown, name: string): boolean | undefined {
  const parsed = serverInfo.safeParse(info);
  if (!parsed.success) return undefined;
  const matches = (factory: string): boolean => factory === name || factory.endsWith(`.${name}`);
  return parsed.data.modules.some((module) => (module.factories ?? []).some(matches));
}

const serverCapabilities = z.object({ capabilities: z.array(z.string()) }).loose();

/** Whether `ServerManager.getInfo()` lists the capability `name` (the embedded server's "simulcast"); undefined when malformed. */
export function hasCapability(info: unknown, name: string): boolean | undefined {
  const parsed = serverCapabilities.safeParse(info);
  return parsed.success ? parsed.data.capabilities.includes(name) : undefined;
}

/** Whether `ServerManager.getInfo()` lists FaceOverlayFilter; undefined when the answer is malformed. */
export function hasFaceOverlayFilter(info: unknown): boolean | undefined {
  return hasFactory(info, "FaceOverlayFilter");
}
