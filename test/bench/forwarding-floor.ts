// Benchmark of the floor under the fast forwarding path (not a test): what
// one 1,200-byte RTP packet costs, in CPU time of this one Node process, for
// the steps the path cannot avoid (docs/media-forwarding.md, "What limits it
// now"), so that the server's measured µs per forwarded packet
// (`npm run bench:media-server`) can be read against them:
//
//   a. one node:dgram `socket.send` of 1,200 bytes to 127.0.0.1, as the fast
//      path sends (to an address, on an unconnected socket). The receiver is a
//      child process that drains its socket, so its reads are not counted;
//      the kernel's loopback delivery runs in the sender's system call and is.
//      Sent in bursts of BURST, then `setImmediate`; the child reports what it
//      has read every REPORT_EVERY datagrams, and the sender waits (idle, so
//      not counted) whenever more than WINDOW are unread, so the receiver's
//      queue does not overflow on a busy machine (the loss is printed).
//   b. one AES-128-GCM encryption as the fast path makes it: createCipheriv,
//      setAAD (12-byte header), update (1,188 bytes), final, getAuthTag.
//   c. AES-128-CTR + HMAC-SHA1-80 the same way: createCipheriv, update,
//      createHmac over header + ciphertext + ROC, digest.
//   d. our own per-packet work without the send, for each SRTP profile:
//      RtpRewriter.write (a 1,200-byte packet out: 20-byte header with the
//      MID extension, 1,180-byte payload), RolloverTracker.rolloverFor and
//      SrtpContext.protect (media-server/objects/webrtc/), as FastRtpSender.send.
//
// Each step runs ROUNDS rounds of PACKETS packets, the steps interleaved round
// by round (a noisy shared machine drifts); CPU is process.cpuUsage (user +
// system) over the round, divided by the packets. Printed: the median round
// per step (and the fastest and slowest), then one JSON line.
//
//   npm run bench:forwarding-floor
//   PACKETS=50000 ROUNDS=3 BURST=50 npm run bench:forwarding-floor
//
// 127.0.0.1 only; the receiver child is stopped on every exit path.

import { type ChildProcess, spawn } from "node:child_process";
import { createCipheriv, createHmac, randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { once } from "node:events";
import { cpus, loadavg } from "node:os";
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import { RtpHeader, RtpPacket } from "werift";
import { RtpRewriter } from "../../media-server/objects/webrtc/rtp-rewriter.ts";
import {
  RolloverTracker,
  SRTP_AEAD_AES_128_GCM,
  SRTP_AES128_CM_HMAC_SHA1_80,
  type SrtpProfile,
  SrtpContext,
} from "../../media-server/objects/webrtc/srtp-sender.ts";

const PACKET_BYTES = 1200;
const RTP_HEADER_BYTES = 12;
const PACKETS = positiveInteger("PACKETS", 200_000);
const ROUNDS = positiveInteger("ROUNDS", 5);
const BURST = positiveInteger("BURST", 50);
/** Datagrams the receiver may have unread before the sender waits: far below its 4 MB queue (~2.3 kB each in the kernel). */
const WINDOW = 1000;
/** The receiver reports its count every this many datagrams (an IPC message the sender handles: ~0.1 µs a packet). */
const REPORT_EVERY = 200;
/** Longest wait for the receiver to catch up; past it the sender goes on (and the loss shows in the count). */
const CATCH_UP_MS = 1000;
/** Packets per step before the measured rounds (JIT, cipher contexts, socket buffers). */
const WARMUP_PACKETS = Math.min(20_000, PACKETS);
/** The receiver child: binds 127.0.0.1, drains, reports its count over IPC (CommonJS, run with `node -e`). */
const RECEIVER_SOURCE = `
const socket = require("node:dgram").createSocket("udp4");
let received = 0;
socket.on("message", () => {
  received += 1;
  if (received % ${REPORT_EVERY} === 0) process.send({ received });
});
socket.bind(0, "127.0.0.1", () => {
  try { socket.setRecvBufferSize(8 * 1024 * 1024); } catch {}
  process.send({ port: socket.address().port });
});
process.on("message", (message) => {
  if (message === "count") process.send({ received });
  if (message === "stop") { socket.close(); process.disconnect(); }
});
`;

function positiveInteger(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
  return value;
}

interface Step {
  /** Short name, the JSON row's `step`. */
  readonly key: string;
  /** What the table shows. */
  readonly label: string;
  /** Does `count` packets of the step; resolves when their CPU has been spent. */
  run(count: number): Promise<void> | void;
}

/** Defeats dead-code elimination: every step folds a byte of its output in here. */
let sink = 0;

/** (a) dgram sends to a draining receiver in a child process. */
async function sendStep(): Promise<{ step: Step; received(): Promise<number>; sent(): number; stop(): Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, ["-e", RECEIVER_SOURCE], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const stopChild = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
  };
  process.once("exit", stopChild);
  const [ready] = (await once(child, "message")) as [{ port: number }];
  let received = 0;
  let sent = 0;
  let caughtUp: (() => void) | undefined;
  child.on("message", (message: { received?: number }) => {
    if (typeof message.received === "number") received = Math.max(received, message.received);
    if (caughtUp && sent - received <= WINDOW / 2) caughtUp();
  });
  const catchUp = async (): Promise<void> => {
    const bound = AbortSignal.timeout(CATCH_UP_MS);
    await new Promise<void>((resolve) => {
      caughtUp = resolve;
      bound.addEventListener("abort", () => resolve(), { once: true });
    });
    caughtUp = undefined;
  };
  const socket: Socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const packet = randomBytes(PACKET_BYTES);
  packet[0] = 0x80;
  return {
    step: {
      key: "dgram-send",
      label: `a. dgram socket.send of ${PACKET_BYTES} B to 127.0.0.1 (bursts of ${BURST}, then setImmediate)`,
      async run(count) {
        for (let done = 0; done < count; ) {
          const burst = Math.min(BURST, count - done);
          for (let i = 0; i < burst; i++) socket.send(packet, ready.port, "127.0.0.1");
          done += burst;
          sent += burst;
          // The sends above go out from the next tick (dgram's address lookup); this lets them, and the receiver, run.
          await nextTurn();
          if (sent - received > WINDOW) await catchUp();
        }
      },
    },
    sent: () => sent,
    // What the child has read once it reads no more.
    async received() {
      let last = -1;
      while (received !== last) {
        last = received;
        child.send("count");
        await sleep(200);
      }
      return received;
    },
    async stop() {
      socket.close();
      if (child.connected) child.send("stop");
      const exited = once(child, "exit");
      const bound = sleep(5000).then(stopChild);
      await Promise.race([exited, bound]);
      process.removeListener("exit", stopChild);
    },
  };
}

/** (b) AES-128-GCM per packet, as SrtpContext.protect does it. */
function gcmStep(): Step {
  const key = randomBytes(16);
  const iv = randomBytes(12);
  const packet = randomBytes(PACKET_BYTES);
  const header = packet.subarray(0, RTP_HEADER_BYTES);
  const payload = packet.subarray(RTP_HEADER_BYTES);
  return {
    key: "aes-128-gcm",
    label: "b. AES-128-GCM: createCipheriv, setAAD (12 B), update (1,188 B), final, getAuthTag",
    run(count) {
      for (let i = 0; i < count; i++) {
        iv.writeUInt16BE(i & 0xffff, 10);
        const cipher = createCipheriv("aes-128-gcm", key, iv);
        cipher.setAAD(header);
        const encrypted = cipher.update(payload);
        cipher.final();
        const tag = cipher.getAuthTag();
        sink ^= (encrypted[0] ?? 0) ^ (tag[0] ?? 0);
      }
    },
  };
}

/** (c) AES-128-CTR + HMAC-SHA1-80 per packet, as SrtpContext.protect does it for the CM profile. */
function ctrHmacStep(): Step {
  const key = randomBytes(16);
  const authKey = randomBytes(20);
  const iv = randomBytes(16);
  const roc = Buffer.alloc(4);
  const packet = randomBytes(PACKET_BYTES);
  const header = packet.subarray(0, RTP_HEADER_BYTES);
  const payload = packet.subarray(RTP_HEADER_BYTES);
  return {
    key: "aes-128-ctr+hmac-sha1-80",
    label: "c. AES-128-CTR (createCipheriv, update) + HMAC-SHA1-80 (createHmac, update x3, digest)",
    run(count) {
      for (let i = 0; i < count; i++) {
        iv.writeUInt16BE(i & 0xffff, 12);
        const encrypted = createCipheriv("aes-128-ctr", key, iv).update(payload);
        const tag = createHmac("sha1", authKey).update(header).update(encrypted).update(roc).digest();
        sink ^= (encrypted[0] ?? 0) ^ (tag[9] ?? 0);
      }
    },
  };
}

/** (d) RtpRewriter.write + RolloverTracker + SrtpContext.protect, as FastRtpSender.send does before it sends. */
function ourPathStep(profile: SrtpProfile): Step {
  const gcm = profile === SRTP_AEAD_AES_128_GCM;
  const srtp = new SrtpContext(profile, randomBytes(16), randomBytes(gcm ? 12 : 14));
  const mid = { id: 1, value: "1" };
  const rewriter = new RtpRewriter(0x1234_5678, 3000, mid);
  const rollover = new RolloverTracker();
  // The MID extension block is 8 bytes: 12 + 8 + 1,180 = a 1,200-byte packet out.
  const source = new RtpPacket(
    new RtpHeader({ payloadType: 96, sequenceNumber: 0, timestamp: 0, ssrc: 0x0bad_cafe, marker: false }),
    randomBytes(PACKET_BYTES - RTP_HEADER_BYTES - 8),
  );
  let sequenceNumber = 0;
  return {
    key: gcm ? "rewrite+protect-gcm" : "rewrite+protect-cm",
    label: `d. RtpRewriter.write + SrtpContext.protect, ${gcm ? "AEAD_AES_128_GCM" : "AES_CM_128_HMAC_SHA1_80"} (no send)`,
    run(count) {
      for (let i = 0; i < count; i++) {
        sequenceNumber = (sequenceNumber + 1) & 0xffff;
        source.header.sequenceNumber = sequenceNumber;
        source.header.timestamp = (source.header.timestamp + 3000) >>> 0;
        if (!rewriter.write(source, 100)) throw new Error("the rewriter refused the packet");
        if (rewriter.length !== PACKET_BYTES) throw new Error(`rewritten packet is ${rewriter.length} bytes`);
        const roc = rollover.rolloverFor(rewriter.sequenceNumber);
        const out = srtp.protect(
          rewriter.buffer,
          rewriter.headerLength,
          rewriter.length,
          rewriter.ssrc,
          rewriter.sequenceNumber,
          roc,
        );
        sink ^= out[out.length - 1] ?? 0;
      }
    },
  };
}

/** CPU µs (user + system) of this process per packet over one run of `count` packets. */
async function measure(step: Step, count: number): Promise<number> {
  const before = process.cpuUsage();
  await step.run(count);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / count;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

async function main(): Promise<void> {
  const sender = await sendStep();
  const steps: Step[] = [
    sender.step,
    gcmStep(),
    ctrHmacStep(),
    ourPathStep(SRTP_AEAD_AES_128_GCM),
    ourPathStep(SRTP_AES128_CM_HMAC_SHA1_80),
  ];
  const results = new Map<Step, number[]>(steps.map((step) => [step, []]));
  let received = 0;
  try {
    for (const step of steps) await step.run(WARMUP_PACKETS);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const step of steps) results.get(step)?.push(await measure(step, PACKETS));
      process.stderr.write(`round ${round}/${ROUNDS} done\n`);
    }
    received = await sender.received();
  } finally {
    await sender.stop();
  }

  const rows = steps.map((step) => {
    const values = results.get(step) ?? [];
    return { step, median: median(values), min: Math.min(...values), max: Math.max(...values) };
  });
  const header = ["step", "µs CPU / packet (median)", "fastest round", "slowest round"];
  const cells = rows.map((row) => [row.step.label, row.median.toFixed(2), row.min.toFixed(2), row.max.toFixed(2)]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((cell) => cell[column]?.length ?? 0)),
  );
  const line = (row: string[]) =>
    `| ${row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join(" | ")} |`;
  const sent = sender.sent();
  console.log(
    `\n${ROUNDS} rounds of ${PACKETS.toLocaleString("en")} packets of ${PACKET_BYTES} B per step (median round shown); ` +
      `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, load average ${loadavg()
        .map((value) => value.toFixed(2))
        .join(" ")}`,
  );
  console.log(line(header));
  console.log(`|${widths.map((width) => "-".repeat(width + 2)).join("|")}|`);
  for (const cell of cells) console.log(line(cell));
  console.log(
    `receiver child read ${received.toLocaleString("en")} of ${sent.toLocaleString("en")} datagrams sent ` +
      `(${(((sent - received) / sent) * 100).toFixed(2)} % lost)`,
  );
  if (sink === 0x100) console.log("(unreachable: keeps the outputs alive)");
  console.log(
    JSON.stringify({
      bench: "forwarding-floor",
      rows: rows.map((row) => ({ step: row.step.key, usPerPacket: Number(row.median.toFixed(3)) })),
    }),
  );
}

await main();
