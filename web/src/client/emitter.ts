/**
 * A small typed event emitter. `addEventListener` keeps the original
 * KurentoRoom.js spelling; `on`/`off`/`once` are the usual short forms and
 * `next()` turns one event into a promise (handy in Node programs and tests).
 *
 * A listener that throws never breaks the library or the other listeners:
 * the error is reported (reportError in browsers, console.error elsewhere).
 */
export type Listener<T> = (event: T) => void;

export interface NextOptions<T> {
  /** Only an event for which this returns true settles the promise. */
  readonly filter?: (event: T) => boolean;
  /** Rejects after this many milliseconds (default 10 s; 0 waits forever). */
  readonly timeoutMs?: number;
}

export class Emitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();

  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): this {
    let set = this.#listeners.get(name);
    if (!set) {
      set = new Set();
      this.#listeners.set(name, set);
    }
    set.add(listener as Listener<never>);
    return this;
  }

  off<K extends keyof Events>(name: K, listener: Listener<Events[K]>): this {
    this.#listeners.get(name)?.delete(listener as Listener<never>);
    return this;
  }

  once<K extends keyof Events>(name: K, listener: Listener<Events[K]>): this {
    const wrapper: Listener<Events[K]> = (event) => {
      this.off(name, wrapper);
      listener(event);
    };
    return this.on(name, wrapper);
  }

  /** The original API's name for `on`. */
  addEventListener<K extends keyof Events>(name: K, listener: Listener<Events[K]>): this {
    return this.on(name, listener);
  }

  removeEventListener<K extends keyof Events>(name: K, listener: Listener<Events[K]>): this {
    return this.off(name, listener);
  }

  /** Resolves with the next `name` event (that passes `filter`). */
  next<K extends keyof Events>(name: K, options: NextOptions<Events[K]> = {}): Promise<Events[K]> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.off(name, listener);
              reject(new Error(`timed out after ${timeoutMs} ms waiting for '${String(name)}'`));
            }, timeoutMs)
          : null;
      const listener: Listener<Events[K]> = (event) => {
        if (options.filter && !options.filter(event)) return;
        this.off(name, listener);
        if (timer) clearTimeout(timer);
        resolve(event);
      };
      this.on(name, listener);
    });
  }

  listenerCount<K extends keyof Events>(name: K): number {
    return this.#listeners.get(name)?.size ?? 0;
  }

  removeAllListeners(): void {
    this.#listeners.clear();
  }

  protected emit<K extends keyof Events>(name: K, event: Events[K]): void {
    const set = this.#listeners.get(name);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<Events[K]>)(event);
      } catch (error) {
        reportListenerError(error);
      }
    }
  }
}

function reportListenerError(error: unknown): void {
  const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
  if (typeof report === "function") report(error);
  else console.error("kurento-room: an event listener threw", error);
}
