/**
 * Signalling benchmark (not a test): N clients join one room, then a chat
 * storm in which every client sends M messages; each message is delivered to
 * all N clients (sender included), so the storm makes N·M·N deliveries.
 *
 * The same client code runs against
 *   1. the worker under `wrangler dev` (real workerd, one room Durable Object), and
 *   2. a minimal `ws` broadcast server (a child process of this script) that
 *      answers joinRoom/sendMessage/leaveRoom and broadcasts, as the floor.
 *
 * Prints join latency p50/p99 (joins one after another, request → response),
 * fan-out deliveries per second (notifications received by all clients ÷ wall
 * time of the storm, first send → last delivery) and per-delivery latency.
 *
 *   npm run bench:signalling -- --clients 50 --messages 20 [--deflate on|off] [--timeout 120]
 *
 * permessage-deflate is off by default: browsers offer it and workerd accepts
 * it, but then inflating 50 000 messages in this single client process is the
 * bottleneck for both targets. `--deflate on` measures with it (the floor
 * server then compresses too).
 *
 * Bounded: at most 500 clients and 1000 messages each, a deadline per phase;
 * 127.0.0.1 only; stops everything it started (wrangler's process group, the
 * floor server child) on every exit path.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import WebSocket, { WebSocketServer } from "ws";
import { startWranglerDev, type WranglerDev } from "../../scripts/wrangler-dev.ts";

const ROOM = "bench-room";

// ── floor server (runs in a child process: `--serve-floor`) ─────────────────

/** The least a Room server must do: answer, and broadcast to everyone in one room. */
function serveFloor(deflate: boolean): void {
  // Compresses when the client offers permessage-deflate and `deflate` is on, as workerd does.
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: deflate });
  const members = new Map<WebSocket, string>();
  let sessions = 0;
  const sessionOf = new Map<WebSocket, string>();
  server.on("connection", (ws) => {
    sessionOf.set(ws, `floor-${++sessions}`);
    ws.on("message", (data) => {
      let frame: { id?: number; method?: string; params?: Record<string, unknown> };
      try {
        frame = JSON.parse(data.toString()) as typeof frame;
      } catch {
        ws.send(JSON.stringify({ id: null, error: { code: -32700, message: "Parse error" }, jsonrpc: "2.0" }));
        return;
      }
      const sessionId = sessionOf.get(ws) ?? "";
      const reply = (result: Record<string, unknown>): void =>
        ws.send(JSON.stringify({ id: frame.id, result: { ...result, sessionId }, jsonrpc: "2.0" }));
      const broadcast = (method: string, params: unknown, except: WebSocket | null): void => {
        const text = JSON.stringify({ method, params, jsonrpc: "2.0" });
        for (const member of members.keys()) if (member !== except) member.send(text);
      };
      switch (frame.method) {
        case "joinRoom": {
          const user = String(frame.params?.user ?? "");
          const peers = [...members.values()].map((id) => ({ id }));
          broadcast("participantJoined", { id: user }, null);
          members.set(ws, user);
          reply({ value: peers });
          return;
        }
        case "sendMessage": {
          reply({});
          broadcast(
            "sendMessage",
            { room: frame.params?.roomMessage, user: members.get(ws), message: frame.params?.message },
            null,
          );
          return;
        }
        case "leaveRoom": {
          const user = members.get(ws);
          members.delete(ws);
          reply({});
          broadcast("participantLeft", { name: user }, null);
          ws.close(1000);
          return;
        }
        case "ping":
          reply({ value: "pong" });
          return;
        default:
          ws.send(
            JSON.stringify({ id: frame.id, error: { code: -32601, message: "Method not found" }, jsonrpc: "2.0" }),
          );
      }
    });
    ws.on("close", () => {
      const user = members.get(ws);
      members.delete(ws);
      sessionOf.delete(ws);
      if (user !== undefined) {
        const text = JSON.stringify({ method: "participantLeft", params: { name: user }, jsonrpc: "2.0" });
        for (const member of members.keys()) member.send(text);
      }
    });
  });
  server.on("listening", () => {
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    process.stdout.write(`PORT ${port}\n`);
  });
  // The parent holds our stdin: when it goes away (even killed), so do we.
  process.stdin.resume();
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
}

async function startFloor(deflate: boolean): Promise<{ url: string; child: ChildProcess }> {
  const args = [fileURLToPath(import.meta.url), "--serve-floor", ...(deflate ? ["--deflate"] : [])];
  const child = spawn(process.execPath, args, {
    stdio: ["pipe", "pipe", "inherit"],
  });
  if (!child.stdout) throw new Error("floor server has no stdout");
  const lines = createInterface({ input: child.stdout });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("floor server did not start within 10 s")), 10_000);
    lines.once("line", (line) => {
      clearTimeout(timer);
      const match = /^PORT (\d+)$/.exec(line);
      if (match) resolve(Number(match[1]));
      else reject(new Error(`floor server said: ${line}`));
    });
    child.once("exit", (code) => reject(new Error(`floor server exited (${String(code)})`)));
  });
  return { url: `ws://127.0.0.1:${port}`, child };
}

// ── client side ─────────────────────────────────────────────────────────────

interface Frame {
  id?: number | string | null;
  method?: string;
  params?: { message?: string };
  result?: unknown;
  error?: { code: number; message: string };
}

class BenchClient {
  readonly ws: WebSocket;
  nextId = 1;
  readonly pending = new Map<number, (frame: Frame) => void>();
  onNotification: (frame: Frame) => void = () => undefined;

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on("error", () => undefined);
    ws.on("message", (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      if (typeof frame.id === "number" && (frame.result !== undefined || frame.error !== undefined)) {
        const settle = this.pending.get(frame.id);
        this.pending.delete(frame.id);
        settle?.(frame);
      } else if (frame.method) {
        this.onNotification(frame);
      }
    });
  }

  static open(url: string, timeoutMs: number, deflate: boolean): Promise<BenchClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: deflate });
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`connect to ${url} timed out`));
      }, timeoutMs);
      ws.once("open", () => {
        clearTimeout(timer);
        resolve(new BenchClient(ws));
      });
      ws.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  /** Sends a request; the promise settles with the response frame. */
  request(method: string, params: unknown): Promise<Frame> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ws.send(JSON.stringify({ jsonrpc: "2.0", method, params, id }));
    });
  }
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

interface RunResult {
  joinP50: number;
  joinP99: number;
  stormMs: number;
  deliveries: number;
  expected: number;
  deliveriesPerSecond: number;
  deliveryP50: number;
  deliveryP99: number;
}

async function run(
  wsUrl: string,
  clientCount: number,
  messages: number,
  phaseTimeoutMs: number,
  deflate: boolean,
): Promise<RunResult> {
  const clients: BenchClient[] = [];
  try {
    // Connect everyone first, so join latency is only the join.
    for (let i = 0; i < clientCount; i += 25) {
      const batch = Array.from({ length: Math.min(25, clientCount - i) }, () =>
        BenchClient.open(wsUrl, phaseTimeoutMs, deflate),
      );
      clients.push(...(await withDeadline(Promise.all(batch), phaseTimeoutMs, "connect")));
    }

    // Joins, one after another: the k-th join also fans out k−1 participantJoined.
    const joinLatencies: number[] = [];
    for (const [index, client] of clients.entries()) {
      const started = performance.now();
      const response = await withDeadline(
        client.request("joinRoom", { user: `user-${index}`, room: ROOM }),
        phaseTimeoutMs,
        "joinRoom",
      );
      joinLatencies.push(performance.now() - started);
      if (response.error) throw new Error(`joinRoom failed: ${response.error.code} ${response.error.message}`);
    }
    // Let the last participantJoined notifications land before the storm.
    await withDeadline(Promise.all(clients.map((c) => c.request("ping", {}))), phaseTimeoutMs, "ping after joins");

    // The storm: every client sends `messages` chats without waiting; each is delivered to everyone.
    const expected = clientCount * messages * clientCount;
    const deliveryLatencies: number[] = [];
    let deliveries = 0;
    let lastDelivery = 0;
    let allDelivered: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (allDelivered = resolve));
    for (const client of clients) {
      client.onNotification = (frame) => {
        if (frame.method !== "sendMessage") return;
        const now = performance.now();
        deliveries++;
        lastDelivery = now;
        const sentAt = Number(frame.params?.message?.split(" ")[1]);
        if (Number.isFinite(sentAt)) deliveryLatencies.push(now - sentAt);
        if (deliveries === expected) allDelivered();
      };
    }
    const stormStart = performance.now();
    const replies: Promise<Frame>[] = [];
    for (let m = 0; m < messages; m++) {
      for (const [index, client] of clients.entries()) {
        replies.push(
          client.request("sendMessage", {
            message: `m${m} ${performance.now()}`,
            userMessage: `user-${index}`,
            roomMessage: ROOM,
          }),
        );
      }
    }
    try {
      await withDeadline(done, phaseTimeoutMs, "chat storm");
    } catch (error) {
      console.error(`  ${String(error)} (${deliveries}/${expected} delivered); reporting what arrived`);
    }
    const failed = (await withDeadline(Promise.all(replies), phaseTimeoutMs, "sendMessage replies")).filter(
      (r) => r.error,
    );
    if (failed.length > 0)
      throw new Error(`${failed.length} sendMessage requests failed, e.g. ${JSON.stringify(failed[0]?.error)}`);
    const stormMs = (deliveries > 0 ? lastDelivery : performance.now()) - stormStart;
    return {
      joinP50: percentile(joinLatencies, 50),
      joinP99: percentile(joinLatencies, 99),
      stormMs,
      deliveries,
      expected,
      deliveriesPerSecond: deliveries / (stormMs / 1000),
      deliveryP50: percentile(deliveryLatencies, 50),
      deliveryP99: percentile(deliveryLatencies, 99),
    };
  } finally {
    for (const client of clients) client.ws.terminate();
  }
}

function printTable(worker: RunResult, floor: RunResult, clients: number, messages: number, deflate: string): void {
  const rows: Array<[string, (r: RunResult) => number, number]> = [
    ["join latency p50 (ms)", (r) => r.joinP50, 2],
    ["join latency p99 (ms)", (r) => r.joinP99, 2],
    ["storm wall time (ms)", (r) => r.stormMs, 0],
    ["deliveries", (r) => r.deliveries, 0],
    ["fan-out deliveries/s", (r) => r.deliveriesPerSecond, 0],
    ["delivery latency p50 (ms)", (r) => r.deliveryP50, 1],
    ["delivery latency p99 (ms)", (r) => r.deliveryP99, 1],
  ];
  const header = ["metric", "worker (wrangler dev)", "ws floor", "worker ÷ floor"];
  const body = rows.map(([label, pick, digits]) => {
    const w = pick(worker);
    const f = pick(floor);
    return [label, w.toFixed(digits), f.toFixed(digits), f === 0 ? "-" : (w / f).toFixed(2)];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] as string).length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
  console.log(
    `\n${clients} clients, ${messages} messages each → ${clients * messages * clients} deliveries expected per target; permessage-deflate ${deflate}\n`,
  );
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of body) console.log(line(row));
  console.log("");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      clients: { type: "string", default: "50" },
      messages: { type: "string", default: "20" },
      timeout: { type: "string", default: "120" },
      deflate: { type: "string", default: "off" },
    },
  });
  const clients = Number(values.clients);
  const messages = Number(values.messages);
  const timeoutSeconds = Number(values.timeout);
  if (!Number.isInteger(clients) || clients < 1 || clients > 500)
    throw new Error("--clients must be an integer in 1..500");
  if (!Number.isInteger(messages) || messages < 1 || messages > 1000)
    throw new Error("--messages must be an integer in 1..1000");
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds < 5 || timeoutSeconds > 600)
    throw new Error("--timeout (seconds per phase) must be in 5..600");
  const phaseTimeoutMs = timeoutSeconds * 1000;
  if (values.deflate !== "on" && values.deflate !== "off") throw new Error("--deflate must be on or off");
  // Off by default: with it on, the 50 clients' inflating (all in this one
  // process) becomes the bottleneck and both targets measure the client.
  const deflate = values.deflate === "on";

  let dev: WranglerDev | null = null;
  let floor: ChildProcess | null = null;
  const cleanup = async (): Promise<void> => {
    floor?.stdin?.end();
    floor?.kill();
    floor = null;
    const d = dev;
    dev = null;
    await d?.stop();
  };
  const onSignal = (): void => {
    void cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    console.log(`starting wrangler dev and the ws floor server (127.0.0.1)…`);
    dev = await startWranglerDev({});
    const started = await startFloor(deflate);
    floor = started.child;

    console.log(
      `worker: ${clients} clients join ${ROOM}, then ${messages} messages each (permessage-deflate ${values.deflate})`,
    );
    const workerResult = await run(
      `${dev.url.replace(/^http/, "ws")}/room/${ROOM}`,
      clients,
      messages,
      phaseTimeoutMs,
      deflate,
    );
    console.log(`floor:  same load against ${started.url}`);
    const floorResult = await run(started.url, clients, messages, phaseTimeoutMs, deflate);
    printTable(workerResult, floorResult, clients, messages, values.deflate);
    for (const [name, r] of [
      ["worker", workerResult],
      ["floor", floorResult],
    ] as const) {
      if (r.deliveries !== r.expected) console.log(`warning: ${name} delivered ${r.deliveries} of ${r.expected}`);
    }
  } finally {
    await cleanup();
  }
}

if (process.argv.includes("--serve-floor")) {
  serveFloor(process.argv.includes("--deflate"));
} else {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : String(error));
      process.exit(1);
    },
  );
}
