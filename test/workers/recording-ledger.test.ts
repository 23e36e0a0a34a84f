/**
 * The recording ledger on its own (worker/do/recording-ledger.ts): ops are
 * idempotent (a room's outbox may send a batch twice), a file heard of after
 * the stop gets the stop's deadline, and a recording that settles is a
 * webhook (`recordingReady` / `recordingFailed`) in the ledger's outbox. A
 * ledger object of its own per test, with webhook options the workers
 * project does not set.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { webhookEvent } from "../../protocol/webhooks.ts";
import type { LedgerOp } from "../../worker/core/types.ts";
import { RecordingLedger } from "../../worker/do/recording-ledger.ts";
import type { WorkerOption } from "../../worker/options.ts";

const ID = "rec_ledger-unit-01";
const file = (n: number, user: string) => ({
  name: `00${n}-${user}-webcam.webm`,
  user,
  stream: "webcam",
  startOffsetMs: 0,
});
const START: LedgerOp = { op: "start", id: ID, room: "ledger-room", startedAt: 1_000, files: [file(1, "ann")] };

/** Runs `body` with a fresh ledger (its own object and storage) built with `overrides` on top of the bindings. */
function withLedger<T>(
  name: string,
  overrides: Partial<Record<WorkerOption, string>>,
  body: (ledger: RecordingLedger, sql: SqlStorage) => Promise<T>,
): Promise<T> {
  const stub = env.LEDGER.get(env.LEDGER.idFromName(name));
  return runInDurableObject(stub, async (_instance: RecordingLedger, state) =>
    body(new RecordingLedger(state, { ...env, ...overrides }), state.storage.sql),
  );
}

describe("recording ledger", () => {
  it("applies a batch twice to the same effect", async () => {
    await withLedger("ledger-idempotent", {}, async (ledger) => {
      const batch: LedgerOp[] = [
        START,
        { op: "addFile", id: ID, file: { ...file(2, "bob"), startOffsetMs: 500 } },
        { op: "endFile", id: ID, name: "002-bob-webcam.webm", at: 2_000 },
        { op: "stop", id: ID, at: 3_000 },
      ];
      await ledger.apply(batch);
      const once = await ledger.get(ID);
      await ledger.apply(batch);
      expect(await ledger.get(ID)).toEqual(once);
      expect(once).toMatchObject({
        status: "stopping",
        startedAt: new Date(1_000).toISOString(),
        stoppedAt: new Date(3_000).toISOString(),
      });
      expect(once?.files.map((f) => [f.name, f.status, f.startOffsetMs])).toEqual([
        ["001-ann-webcam.webm", "recording", 0],
        ["002-bob-webcam.webm", "recording", 500],
      ]);
    });
  });

  it("a file heard of after the stop ends at the stop (it gets a deadline)", async () => {
    await withLedger("ledger-late-file", {}, async (ledger, sql) => {
      await ledger.apply([START, { op: "stop", id: ID, at: 3_000 }]);
      await ledger.apply([{ op: "addFile", id: ID, file: file(2, "bob") }]);
      const ended = sql
        .exec<{ name: string; ended_at: number }>(`SELECT name, ended_at FROM files ORDER BY name`)
        .toArray();
      expect(ended).toEqual([
        { name: "001-ann-webcam.webm", ended_at: 3_000 },
        { name: "002-bob-webcam.webm", ended_at: 3_000 },
      ]);
      expect((await ledger.get(ID))?.status).toBe("stopping");
    });
  });

  it("a settled recording is a webhook event from the ledger", async () => {
    const hooks = { WEBHOOK_URLS: "http://127.0.0.1:9/hook", WEBHOOK_SECRET: "ledger-webhook-secret-0123" };
    await withLedger("ledger-hooks", hooks, async (ledger, sql) => {
      await ledger.apply([START, { op: "addFile", id: ID, file: file(2, "bob") }, { op: "stop", id: ID, at: 3_000 }]);
      await ledger.delivered(ID, "001-ann-webcam.webm", { bytes: 10, startOffsetMs: 0, durationMs: 10 });
      // Not settled yet (bob's file is on its way): no event, not even the outbox's table.
      expect(sql.exec(`SELECT name FROM sqlite_master WHERE name = 'webhook_outbox'`).toArray()).toEqual([]);
      await ledger.failed(ID, "002-bob-webcam.webm", "disk full");
      const events = sql
        .exec<{ event: string }>(`SELECT event FROM webhook_outbox ORDER BY seq`)
        .toArray()
        .map((row) => webhookEvent.parse(JSON.parse(row.event)));
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({
        type: "recordingFailed",
        room: "ledger-room",
        seq: 1,
        data: { recording: ID, reason: "file 002-bob-webcam.webm failed: disk full" },
      });
    });
  });

  it("forgets a recording only once it stopped", async () => {
    await withLedger("ledger-remove", {}, async (ledger) => {
      await ledger.apply([START]);
      expect(await ledger.remove(ID)).toBe("recording");
      await ledger.apply([{ op: "stop", id: ID, at: 3_000 }]);
      expect(await ledger.remove(ID)).toBe("removed");
      expect(await ledger.remove(ID)).toBe("unknown");
      expect(await ledger.get(ID)).toBeNull();
    });
  });
});
