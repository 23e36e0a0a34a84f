// @ts-check

/**
 * reconnect-ws for kurento-client 7.2.0, on ws 8.
 *
 * Why this exists: the registry reconnect-ws@0.1.0 (what kurento-client's own
 * fork dependency resolves to) goes through websocket-stream 1.x to ws 0.7,
 * whose frame masking calls the bufferutil 1.x API; with the bufferutil 4 that
 * npm hoists for ws 8, the first frame kurento-client sends in plain Node dies
 * with "Cannot read properties of undefined (reading 'mask')". It also emits
 * 'error' on its emitter for a refused connection, which kills a process that
 * did not listen for it. The root package.json `overrides` installs this
 * package instead, so a plain `require('kurento-client')` works.
 *
 * The API is reconnect-core 1.3's (the module reconnect-ws 0.1.0 is built on),
 * as KurentoClient.js uses it:
 *
 *   const re = reconnect({ failAfter }, onConnection).connect(uri, socketOptions)
 *
 * - `reconnect(opts?, onConnection?)` returns an EventEmitter with
 *   `connected` (a connection is open) and `reconnect` (it will dial again);
 *   `connect(...args)` / `listen(...args)` start dialling with those arguments
 *   (`new WebSocket(...args)`), `disconnect()` stops for good and ends the
 *   connection, `reset()` restarts the backoff and dials now; `_connection` is
 *   the current connection.
 * - Events: `connect` and `connection` (the connection) when a socket opens;
 *   `disconnect` (error) when it closes or an attempt fails; `reconnect`
 *   (n, delay) before every retry; `backoff` (n, delay, error) when a retry is
 *   scheduled; `fail` (error) after `failAfter` retries in a row failed (then
 *   it stops, like `disconnect()`); `error` (error) for a socket error, only
 *   when someone listens.
 * - Backoff: fibonacci, 100 ms growing to 10 s (reconnect-core with an options
 *   object and the `backoff` package's defaults), or `initialDelay` /
 *   `maxDelay`; reset once a connection opens. With no options object,
 *   reconnect-core's 1 s to 30 s.
 * - A connection is what kurento-jsonrpc takes as `rpc.transport`: an
 *   EventEmitter with `send(text)` / `write(text)` and `data` events carrying
 *   each incoming message as a string; `writable`; `end()` closes it, and
 *   `destroy()` drops it at once (the emitter then reconnects), like
 *   websocket-stream's `end()` / `destroy()`; `socket` is the ws WebSocket.
 *
 * Differences from the old stack, none visible to kurento-client: frames are
 * sent as text (KMS reads text and binary alike); an attempt that has not
 * opened within 10 s (`handshakeTimeout`, overridable in socket options)
 * counts as failed instead of hanging on the operating system's TCP timeout;
 * 'error' is not thrown when unheard.
 */
const { EventEmitter } = require("node:events");
const { WebSocket } = require("ws");

const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * @typedef {object} ReconnectOptions
 * @property {number} [failAfter] give up (`fail`) after this many failed retries in a row
 * @property {number} [initialDelay] first backoff delay in ms (default 100)
 * @property {number} [maxDelay] longest backoff delay in ms (default 10000)
 * @property {(connection: Connection) => void} [onConnect] `connection` listener, if not passed separately
 */

/** Fibonacci delays, as the `backoff` package's FibonacciBackoffStrategy computes them. */
class FibonacciBackoff {
  /** @param {number} initialDelay @param {number} maxDelay */
  constructor(initialDelay, maxDelay) {
    this.initialDelay = initialDelay;
    this.maxDelay = maxDelay;
    /** Retries scheduled since the last reset. */
    this.number = 0;
    this.previous = 0;
    this.next = initialDelay;
  }

  /** @returns {number} */
  delay() {
    const delay = Math.min(this.next, this.maxDelay);
    this.next += this.previous;
    this.previous = delay;
    this.number += 1;
    return delay;
  }

  reset() {
    this.number = 0;
    this.previous = 0;
    this.next = this.initialDelay;
  }
}

/** One WebSocket connection, as kurento-jsonrpc's transport. */
class Connection extends EventEmitter {
  /** @param {WebSocket} socket */
  constructor(socket) {
    super();
    this.socket = socket;
    this.writable = true;
  }

  /** @param {string} message @returns {boolean} whether it was handed to the socket */
  send(message) {
    if (!this.writable || this.socket.readyState !== WebSocket.OPEN) return false;
    try {
      this.socket.send(String(message));
      return true;
    } catch {
      return false;
    }
  }

  /** @param {string} message @returns {boolean} */
  write(message) {
    return this.send(message);
  }

  /** Closes the socket (an attempt still connecting is aborted). */
  end() {
    this.writable = false;
    if (this.socket.readyState === WebSocket.CONNECTING) this.socket.terminate();
    else this.socket.close();
  }

  /** Drops the socket at once. */
  destroy() {
    this.writable = false;
    this.socket.terminate();
  }
}

/**
 * @param {ReconnectOptions | ((connection: Connection) => void)} [opts]
 * @param {(connection: Connection) => void} [onConnect]
 */
function reconnect(opts, onConnect) {
  const listener = typeof opts === "function" ? opts : onConnect;
  /** @type {ReconnectOptions} */
  const options = typeof opts === "object" && opts !== null ? opts : { initialDelay: 1e3, maxDelay: 30e3 };
  const onConnection = listener ?? options.onConnect;
  const backoff = new FibonacciBackoff(options.initialDelay || 100, options.maxDelay || 10_000);
  const failAfter = options.failAfter && options.failAfter > 0 ? options.failAfter : Number.POSITIVE_INFINITY;

  const emitter = /** @type {ReconnectEmitter} */ (new EventEmitter());
  emitter.connected = false;
  emitter.reconnect = true;
  emitter._connection = undefined;
  if (onConnection) emitter.on("connection", onConnection);

  /** @type {unknown[] | undefined} */
  let args;
  /** @type {NodeJS.Timeout | undefined} */
  let timer;

  /** @param {number} n @param {number} delay */
  function attempt(n, delay) {
    timer = undefined;
    if (emitter.connected || !emitter.reconnect || !args) return;
    emitter.emit("reconnect", n, delay);
    const [uri, protocolsOrOptions, maybeOptions] = /** @type {[string, unknown, unknown]} */ (args);
    const socket = socketFor(uri, protocolsOrOptions, maybeOptions);
    const connection = new Connection(socket);
    emitter._connection = connection;
    let opened = false;
    /** @type {Error | undefined} */
    let failure;

    socket.on("open", () => {
      opened = true;
      backoff.reset();
      emitter.connected = true;
      emitter.emit("connect", connection);
      emitter.emit("connection", connection);
    });
    socket.on("message", (data) => {
      const text = Array.isArray(data)
        ? Buffer.concat(data).toString("utf8")
        : data instanceof ArrayBuffer
          ? Buffer.from(data).toString("utf8")
          : data.toString("utf8");
      connection.emit("data", text);
    });
    socket.on("error", (error) => {
      failure = error;
      // reconnect-core re-emits it; unheard, that would kill the process when a KMS is down.
      if (emitter.listenerCount("error") > 0) emitter.emit("error", error);
    });
    socket.on("close", (code, reason) => {
      connection.writable = false;
      if (emitter._connection !== connection) return;
      emitter.connected = false;
      const text = reason.length ? ` ${reason.toString("utf8")}` : "";
      const what = opened ? "socket closed" : "connection failed";
      const error = failure ?? new Error(`${what} (${code}${text})`);
      // Before checking `reconnect`, so a listener may still call disconnect().
      emitter.emit("disconnect", error);
      if (!emitter.reconnect) return;
      scheduleRetry(error);
    });
  }

  /** @param {Error} error */
  function scheduleRetry(error) {
    if (timer) return;
    if (backoff.number >= failAfter) {
      backoff.reset();
      emitter.disconnect();
      emitter.emit("fail", error);
      return;
    }
    const n = backoff.number;
    const delay = backoff.delay();
    timer = setTimeout(() => attempt(n, delay), delay);
    emitter.emit("backoff", n, delay, error);
  }

  /** @param {unknown[]} connectArgs */
  emitter.connect = emitter.listen = (...connectArgs) => {
    emitter.reconnect = true;
    if (emitter.connected) return emitter;
    backoff.reset();
    if (!args) args = connectArgs;
    if (timer) clearTimeout(timer);
    const current = emitter._connection;
    if (!current || current.socket.readyState === WebSocket.CLOSED) attempt(0, 0);
    return emitter;
  };

  emitter.disconnect = () => {
    emitter.reconnect = false;
    if (timer) clearTimeout(timer);
    timer = undefined;
    emitter._connection?.end();
    return emitter;
  };

  emitter.reset = () => {
    backoff.reset();
    if (timer) clearTimeout(timer);
    attempt(0, 0);
    return emitter;
  };

  return emitter;
}

/**
 * `new WebSocket(uri, protocols?, options?)` with a handshake timeout; like
 * ws 8 itself, an object in the protocols position is the options.
 * @param {string} uri @param {unknown} protocolsOrOptions @param {unknown} maybeOptions
 * @returns {WebSocket}
 */
function socketFor(uri, protocolsOrOptions, maybeOptions) {
  const optionsFirst =
    typeof protocolsOrOptions === "object" && protocolsOrOptions !== null && !Array.isArray(protocolsOrOptions);
  const protocols =
    optionsFirst || protocolsOrOptions == null ? undefined : /** @type {string | string[]} */ (protocolsOrOptions);
  const given = /** @type {import("ws").ClientOptions | undefined} */ (
    optionsFirst ? protocolsOrOptions : (maybeOptions ?? undefined)
  );
  return new WebSocket(uri, protocols, { handshakeTimeout: HANDSHAKE_TIMEOUT_MS, ...given });
}

/**
 * @typedef {EventEmitter & {
 *   connected: boolean,
 *   reconnect: boolean,
 *   _connection: Connection | undefined,
 *   connect: (...args: unknown[]) => ReconnectEmitter,
 *   listen: (...args: unknown[]) => ReconnectEmitter,
 *   disconnect: () => ReconnectEmitter,
 *   reset: () => ReconnectEmitter,
 * }} ReconnectEmitter
 */

module.exports = reconnect;
module.exports.Connection = Connection;
/** Lets a user check that this package, not the registry reconnect-ws, is installed. */
module.exports.transport = "ws8";
