/**
 * Recording through the admin REST API, inside workerd (README
 * "Recordings"): the admin token on every route, every refusal (bad bodies,
 * unknown rooms and ids, nothing to record, a second recording), the
 * notifications to everyone and to a late joiner, the `record` and
 * `stopRecording` commands a fake bridge gets (existing publishers, later
 * ones, a republish, the last leave, an admin close), a refused `record`,
 * and a recording that survives the room object's eviction.
 */
import { createExecutionContext, env, evictDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { checkUploadToken, recording as recordingSchema, UPLOAD_PART_BYTES } from "../../protocol/recordings.ts";
import worker from "../../worker/index.ts";
import type { Env } from "../../worker/env.ts";
import { bridgeSecret, closeAll, roomStub, SLACK_MS, until } from "./fake-bridge.ts";
import {
  api,
  fileBytes,
  getRecording,
  notified,
  post,
  RecordedRoom,
  storedRecording,
  uploadFile,
} from "./recording-helpers.ts";
import type { Client } from "./ws-client.ts";

const TEST = { timeout: 4 * SLACK_MS };

afterEach(closeAll);

async function errorOf(response: Response): Promise<string> {
  const body = (await response.json()) as { error?: unknown };
  expect(typeof body.error).toBe("string");
  return String(body.error);
}

async function startIn(room: string, name?: string): Promise<string> {
  const response = await post("/api/recordings", { room, ...(name === undefined ? {} : { name }) });
  expect(response.status).toBe(201);
  return recordingSchema.parse(await response.json()).id;
}

/** The index of the first frame of `client` matching, or -1. */
function indexOf(client: Client, match: (f: Client["frames"][number]) => boolean): number {
  return client.frames.findIndex(match);
}

describe("recordings REST API: refusals", () => {
  it("every route needs the admin token (401 without it or with a wrong one)", TEST, async () => {
    const id = "rec_abcdefghij";
    for (const [method, path] of [
      ["POST", "/api/recordings"],
      ["GET", "/api/recordings"],
      ["GET", `/api/recordings/${id}`],
      ["POST", `/api/recordings/${id}/stop`],
      ["DELETE", `/api/recordings/${id}`],
      ["GET", `/api/recordings/${id}/files/001-ann-webcam.webm`],
      ["GET", `/api/recordings/${id}/files/manifest.json`],
    ] as const) {
      const bare = await api(path, { method, headers: { Authorization: "" } });
      expect(bare.status, `${method} ${path}`).toBe(401);
      const wrong = await api(path, { method, headers: { Authorization: "Bearer not-the-admin-token" } });
      expect(wrong.status, `${method} ${path}`).toBe(401);
      expect(await errorOf(wrong)).toContain("admin token");
    }
  });

  it("503 naming what is missing: the RECORDINGS binding, BRIDGE_SECRET, ADMIN_TOKEN", TEST, async () => {
    async function call(overrides: Partial<Record<keyof Env, unknown>>): Promise<Response> {
      const ctx = createExecutionContext();
      const request = new Request("https://example.com/api/recordings", {
        method: "POST",
        headers: { Authorization: "Bearer test-admin-token" },
        body: JSON.stringify({ room: "anywhere" }),
      });
      const response = await worker.fetch(request, { ...env, ...overrides } as Env, ctx);
      await waitOnExecutionContext(ctx);
      return response;
    }
    const noBucket = await call({ RECORDINGS: undefined });
    expect(noBucket.status).toBe(503);
    expect(await errorOf(noBucket)).toMatch(/R2 bucket binding RECORDINGS is missing/);
    const noSecret = await call({ BRIDGE_SECRET: undefined });
    expect(noSecret.status).toBe(503);
    expect(await errorOf(noSecret)).toContain("BRIDGE_SECRET");
    const noAdmin = await call({ ADMIN_TOKEN: undefined });
    expect(noAdmin.status).toBe(503);
    expect(await errorOf(noAdmin)).toContain("ADMIN_TOKEN");
  });

  it("bad bodies, room names, ids and file names get 400; unknown ids 404", TEST, async () => {
    const starts: Array<[string, string]> = [
      ["{", "the body must be JSON"],
      ["[]", "invalid body"],
      [JSON.stringify({}), "invalid body"],
      [JSON.stringify({ room: 5 }), "invalid body"],
      [JSON.stringify({ room: "r", extra: true }), "invalid body"],
      [JSON.stringify({ room: "r", name: "" }), "invalid body"],
      [JSON.stringify({ room: "r", name: "n".repeat(201) }), "invalid body"],
      [JSON.stringify({ room: "a\u200bb" }), "invalid room name"],
    ];
    for (const [body, expected] of starts) {
      const response = await api("/api/recordings", { method: "POST", body });
      expect(response.status, body).toBe(400);
      expect(await errorOf(response)).toContain(expected);
    }
    expect((await api("/api/recordings?room=%E2%80%8B")).status).toBe(400);
    for (const [method, path] of [
      ["GET", "/api/recordings/nope"],
      ["POST", "/api/recordings/rec_short/stop"],
      ["DELETE", "/api/recordings/rec_bad!chars"],
      ["GET", "/api/recordings/123/files/manifest.json"],
    ] as const) {
      const response = await api(path, { method });
      expect(response.status, `${method} ${path}`).toBe(400);
      expect(await errorOf(response)).toContain("recording id");
    }
    const unknown = "rec_doesnotexist0";
    for (const [method, path] of [
      ["GET", `/api/recordings/${unknown}`],
      ["POST", `/api/recordings/${unknown}/stop`],
      ["DELETE", `/api/recordings/${unknown}`],
      ["GET", `/api/recordings/${unknown}/files/manifest.json`],
      ["GET", `/api/recordings/${unknown}/files/001-ann-webcam.webm`],
    ] as const) {
      const response = await api(path, { method });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(await errorOf(response)).toContain(unknown);
    }
    for (const name of ["..%2Fsecret", "001-ann-webcam.mp4", "ann.webm", "001-ann-.webm"]) {
      const response = await api(`/api/recordings/${unknown}/files/${name}`);
      expect(response.status, name).toBe(400);
      expect(await errorOf(response)).toContain("not a recording file name");
    }
  });

  it("an unknown or empty room is 404; a room where nobody publishes is 422", TEST, async () => {
    const missing = await post("/api/recordings", { room: "rec-nobody-here" });
    expect(missing.status).toBe(404);
    expect(await errorOf(missing)).toBe("Room 'rec-nobody-here' not found");
    const r = await RecordedRoom.open("rec-quiet");
    await r.join("ann");
    const quiet = await post("/api/recordings", { room: "rec-quiet" });
    expect(quiet.status).toBe(422);
    expect(await errorOf(quiet)).toBe("Room 'rec-quiet' has no published stream to record");
    expect(await storedRecording("rec-quiet")).toBeNull();
  });
});

describe("recordings REST API: a recording's life", () => {
  it(
    "start records every publisher, tells everyone and late joiners, follows later publishes; a second start is 409",
    TEST,
    async () => {
      const r = await RecordedRoom.open("rec-life");
      const ann = await r.join("ann");
      const bob = await r.join("bob");
      const carl = await r.join("carl");
      await r.publish("ann");
      await r.publish("bob");

      const response = await post("/api/recordings", { room: "rec-life", name: "standup" });
      expect(response.status).toBe(201);
      const started = recordingSchema.parse(await response.json());
      const id = started.id;
      expect(started).toMatchObject({ room: "rec-life", name: "standup", status: "recording" });
      expect(started.files.map((f) => [f.name, f.user, f.status])).toEqual([
        ["001-ann-webcam.webm", "ann", "recording"],
        ["002-bob-webcam.webm", "bob", "recording"],
      ]);
      const commands = [await r.record(), await r.record()];
      expect(commands.map((c) => [c.user, c.file, c.stream])).toEqual([
        ["ann", "001-ann-webcam.webm", "webcam"],
        ["bob", "002-bob-webcam.webm", "webcam"],
      ]);
      for (const command of commands) {
        expect(command.recording).toBe(id);
        expect(command.startedAt).toBe(Date.parse(started.startedAt));
        expect(await checkUploadToken(bridgeSecret(), command.token, id)).toEqual({ ok: true });
        expect((await checkUploadToken(bridgeSecret(), command.token, "rec_someotherone")).ok).toBe(false);
      }
      for (const client of [ann, bob, carl])
        expect((await notified(client, "recordingStarted", id)).params).toEqual({ id });
      expect(await getRecording(id)).toEqual(started);

      const second = await post("/api/recordings", { room: "rec-life" });
      expect(second.status).toBe(409);
      expect(await errorOf(second)).toContain(id);

      // A late joiner hears of it right after its joinRoom answer.
      const dave = await r.join("dave");
      const answered = indexOf(dave, (f) => f.id === 1 && f.method === undefined);
      await notified(dave, "recordingStarted", id);
      expect(indexOf(dave, (f) => f.method === "recordingStarted")).toBe(answered + 1);

      // A later publisher gets the next file; an unpublish sends nothing; publishing again is a new file.
      await r.publish("carl");
      expect(await r.record()).toMatchObject({ user: "carl", file: "003-carl-webcam.webm", recording: id });
      expect((await bob.request("unpublishVideo")).error).toBeUndefined();
      r.theLink().reply((await r.theLink().incoming("unpublish")).id, {});
      await r.publish("bob");
      expect(await r.record()).toMatchObject({ user: "bob", file: "004-bob-webcam.webm", recording: id });
      expect(r.theLink().frames.filter((f) => f.method === "stopRecording")).toEqual([]);
      const now = await getRecording(id);
      expect(now.files.map((f) => f.name)).toEqual([
        "001-ann-webcam.webm",
        "002-bob-webcam.webm",
        "003-carl-webcam.webm",
        "004-bob-webcam.webm",
      ]);
      expect(now.files.find((f) => f.name === "003-carl-webcam.webm")?.startOffsetMs).toBeGreaterThanOrEqual(0);
      expect(await storedRecording("rec-life")).toMatchObject({
        id,
        files: {
          ann_webcam: "001-ann-webcam.webm",
          carl_webcam: "003-carl-webcam.webm",
          bob_webcam: "004-bob-webcam.webm",
        },
      });
    },
  );

  it(
    "stop: stopRecording to the bridge, recordingStopped to everyone, status stopping; stopping again is harmless",
    TEST,
    async () => {
      const r = await RecordedRoom.open("rec-stop");
      const ann = await r.join("ann");
      const bob = await r.join("bob");
      await r.publish("ann");
      const id = await startIn("rec-stop");
      await r.record();

      const stopped = await post(`/api/recordings/${id}/stop`);
      expect(stopped.status).toBe(200);
      const body = recordingSchema.parse(await stopped.json());
      expect(body.status).toBe("stopping");
      expect(body.stoppedAt).toEqual(expect.any(String));
      const command = await r.theLink().incoming("stopRecording");
      expect(command.params).toEqual({ recording: id });
      r.theLink().reply(command.id, {});
      for (const client of [ann, bob]) expect((await notified(client, "recordingStopped", id)).params).toEqual({ id });
      expect(await storedRecording("rec-stop")).toBeNull();

      const again = await post(`/api/recordings/${id}/stop`);
      expect(again.status).toBe(200);
      expect(await again.json()).toEqual(body);

      // A new recording may start now; the list is newest first.
      const next = await startIn("rec-stop");
      await r.record();
      const listed = await api("/api/recordings?room=rec-stop");
      expect(listed.status).toBe(200);
      const ids = ((await listed.json()) as Array<{ id: string }>).map((x) => x.id);
      expect(ids).toEqual([next, id]);
      const all = (await (await api("/api/recordings")).json()) as Array<{ id: string }>;
      expect(all.map((x) => x.id)).toEqual(expect.arrayContaining([next, id]));
    },
  );

  it("the last participant leaving stops the recording before the room's media is released", TEST, async () => {
    const r = await RecordedRoom.open("rec-last");
    const ann = await r.join("ann");
    await r.publish("ann");
    const id = await startIn("rec-last");
    await r.record();
    expect((await ann.request("leaveRoom")).error).toBeUndefined();
    await r.theLink().incoming("stopRecording");
    await r.theLink().waitFor((f) => f.method === "releaseRoom", "releaseRoom");
    const order = r.theLink().frames.map((f) => f.method);
    expect(order.indexOf("stopRecording")).toBeLessThan(order.indexOf("releaseUser"));
    expect(order.indexOf("releaseUser")).toBeLessThan(order.indexOf("releaseRoom"));
    await until(async () => ((await getRecording(id)).status === "stopping" ? true : undefined), "status stopping");
  });

  it("closing the room stops the recording; the participants hear it before roomClosed", TEST, async () => {
    const r = await RecordedRoom.open("rec-close");
    const ann = await r.join("ann");
    await r.publish("ann");
    const id = await startIn("rec-close");
    await r.record();
    const closed = await api("/api/rooms/rec-close", { method: "DELETE" });
    expect(closed.status).toBe(200);
    await r.theLink().incoming("stopRecording");
    await ann.waitFor((f) => f.method === "roomClosed", "roomClosed");
    expect(indexOf(ann, (f) => f.method === "recordingStopped")).toBeLessThan(
      indexOf(ann, (f) => f.method === "roomClosed"),
    );
    await until(async () => ((await getRecording(id)).status === "stopping" ? true : undefined), "status stopping");
  });

  it(
    "a record the bridge refuses fails that file with the bridge's reason; the stopped recording fails naming it",
    TEST,
    async () => {
      const r = await RecordedRoom.open("rec-refused");
      await r.join("ann");
      await r.join("bob");
      await r.publish("ann");
      await r.publish("bob");
      const id = await startIn("rec-refused");
      await r.record({ code: 301, message: "this media server cannot record" });
      const bob = await r.record();
      const failed = await until(async () => {
        const file = (await getRecording(id)).files.find((f) => f.user === "ann");
        return file?.status === "failed" ? file : undefined;
      }, "ann's file to fail");
      expect(failed.reason).toBe("this media server cannot record");
      // No new file is tried for ann while she still publishes.
      expect((await getRecording(id)).files).toHaveLength(2);
      await post(`/api/recordings/${id}/stop`);
      expect((await getRecording(id)).status).toBe("stopping");
      expect((await uploadFile(bob, fileBytes(64, 1), UPLOAD_PART_BYTES)).status).toBe(200);
      const settled = await getRecording(id);
      expect(settled.status).toBe("failed");
      expect(settled.reason).toBe("file 001-ann-webcam.webm failed: this media server cannot record");
    },
  );

  it("the running recording survives the room object's eviction", TEST, async () => {
    const r = await RecordedRoom.open("rec-evict");
    await r.join("ann");
    const bob = await r.join("bob");
    await r.publish("ann");
    const id = await startIn("rec-evict");
    const first = await r.record();

    await evictDurableObject(roomStub("rec-evict"));
    expect(await storedRecording("rec-evict")).toMatchObject({ id, files: { ann_webcam: "001-ann-webcam.webm" } });
    const carl = await r.join("carl");
    await notified(carl, "recordingStarted", id);
    await r.publish("bob");
    const next = await r.record();
    expect(next).toMatchObject({ recording: id, file: "002-bob-webcam.webm", token: first.token });
    expect((await post(`/api/recordings/${id}/stop`)).status).toBe(200);
    await r.theLink().incoming("stopRecording");
    await notified(bob, "recordingStopped", id);
  });
});
