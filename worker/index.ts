/**
 * The Worker: HTTP routes and WebSocket entry points (Hono). Room logic lives
 * in the room Durable Objects; this file only validates and routes.
 */
import { Hono } from "hono";
import { adminRefusal } from "./admin-auth.ts";
import { ROOM_NAME_HEADER } from "./do/room-object.ts";
import { settingsOf, type Env } from "./env.ts";
import { relayLegacySocket } from "./legacy-relay.ts";
import { name as roomName } from "../protocol/room.ts";
import { CONTROL_AUDIENCE, roomAudience } from "../protocol/tokens/bridge-token.ts";
import { authenticateBridge, forwardWithClaims } from "./bridge-auth.ts";
import {
  type ClientConfigResponse,
  forceUnpublishBody,
  type HealthResponse,
  type RoomListResponse,
  roomInfoResponse,
  type RoomsResponse,
} from "../protocol/rest.ts";
import { describeIssues } from "../protocol/jsonrpc.ts";
import { iceServersFor } from "../protocol/ice-servers.ts";
import { recordingUnavailable } from "./recordings/availability.ts";
import { recordingAdminApi } from "./recordings/admin-api.ts";
import { recordingUploadApi } from "./recordings/upload-api.ts";

export { RoomObject } from "./do/room-object.ts";
export { RoomDirectory } from "./do/room-directory.ts";
export { BridgePool } from "./do/bridge-pool.ts";
export { RecordingLedger } from "./do/recording-ledger.ts";

const app = new Hono<{ Bindings: Env }>();

function directory(env: Env) {
  return env.DIRECTORY.get(env.DIRECTORY.idFromName("directory"));
}

function pool(env: Env) {
  return env.POOL.get(env.POOL.idFromName("pool"));
}

function roomStub(env: Env, room: string) {
  return env.ROOM.get(env.ROOM.idFromName(room));
}

function isUpgrade(request: Request): boolean {
  return request.headers.get("Upgrade")?.toLowerCase() === "websocket";
}

// A misconfiguration (a malformed option, a secret too short) fails every request with 500, loudly.
app.use("*", async (c, next) => {
  settingsOf(c.env);
  await next();
});

app.get("/health", async (c) => {
  const { bridges } = await pool(c.env).summary();
  return c.json({ status: "ok", bridges } satisfies HealthResponse);
});

app.get("/getAllRooms", async (c) => c.json((await directory(c.env).list()) satisfies RoomListResponse));

app.get("/getClientConfig", async (c) => {
  const settings = settingsOf(c.env);
  const { filters, simulcast } = await pool(c.env).summary();
  return c.json({
    loopbackRemote: settings.loopbackRemote,
    loopbackAndLocal: settings.loopbackAndLocal,
    // Filters every attached media server can apply (the demo hides the hat button otherwise).
    filters,
    iceServers: settings.ice ? await iceServersFor(settings.ice, "client-config") : [],
    // The demo shows its Record button only when a participant's startRecording can succeed; the key
    // is absent otherwise, so the answer stays the original's unless the deployment opts in.
    ...(settings.room.recording?.fromClients && recordingUnavailable(c.env) === null
      ? { recordingFromClients: true }
      : {}),
    // Only when true (the embedded media server): clients then publish their webcam in layers.
    ...(simulcast ? { simulcast: true } : {}),
  } satisfies ClientConfigResponse);
});

app.get("/close", async (c) => {
  const refusal = adminRefusal(c);
  if (refusal) return refusal;
  const parsed = roomName.safeParse(c.req.query("room"));
  if (!parsed.success) return c.json({ error: "query parameter 'room' must name a room" }, 400);
  const room = parsed.data;
  return roomStub(c.env, room).fetch("https://room.internal/close", { headers: { [ROOM_NAME_HEADER]: room } });
});

// ── Moderation (admin token): README "Moderation" ───────────────────────────
const ROOM_HEADERS = (room: string) => ({ [ROOM_NAME_HEADER]: room });

app.get("/api/rooms", async (c) => {
  const refusal = adminRefusal(c);
  if (refusal) return refusal;
  const names = await directory(c.env).list();
  const rooms = await Promise.all(
    names.map(async (room) => {
      const response = await roomStub(c.env, room).fetch("https://room.internal/admin/info", {
        headers: ROOM_HEADERS(room),
      });
      const info = response.ok ? roomInfoResponse.safeParse(await response.json()) : null;
      return { room, participants: info?.success ? info.data.participants.length : 0 };
    }),
  );
  return c.json(rooms satisfies RoomsResponse);
});

app.get("/api/rooms/:room", async (c) => {
  const refusal = adminRefusal(c);
  if (refusal) return refusal;
  const parsed = roomName.safeParse(c.req.param("room"));
  if (!parsed.success) return c.json({ error: "invalid room name" }, 400);
  return roomStub(c.env, parsed.data).fetch("https://room.internal/admin/info", { headers: ROOM_HEADERS(parsed.data) });
});

app.delete("/api/rooms/:room", async (c) => {
  const refusal = adminRefusal(c);
  if (refusal) return refusal;
  const parsed = roomName.safeParse(c.req.param("room"));
  if (!parsed.success) return c.json({ error: "invalid room name" }, 400);
  return roomStub(c.env, parsed.data).fetch("https://room.internal/close", { headers: ROOM_HEADERS(parsed.data) });
});

app.post("/api/rooms/:room/participants/:user/:action", async (c) => {
  const refusal = adminRefusal(c);
  if (refusal) return refusal;
  const action = c.req.param("action");
  if (action !== "evict" && action !== "unpublish") return c.json({ error: `unknown action '${action}'` }, 404);
  const room = roomName.safeParse(c.req.param("room"));
  const user = roomName.safeParse(c.req.param("user"));
  if (!room.success || !user.success) return c.json({ error: "invalid room or user name" }, 400);
  let streamId: string | undefined;
  if (action === "unpublish") {
    const text = await c.req.text();
    let raw: unknown = {};
    try {
      raw = text.trim() === "" ? {} : JSON.parse(text);
    } catch {
      return c.json({ error: 'the body must be JSON: {"streamId"?: string}' }, 400);
    }
    const body = forceUnpublishBody.safeParse(raw);
    if (!body.success) return c.json({ error: `invalid body: ${describeIssues(body.error)}` }, 400);
    streamId = body.data.streamId;
  }
  return roomStub(c.env, room.data).fetch(`https://room.internal/admin/${action}`, {
    method: "POST",
    headers: { ...ROOM_HEADERS(room.data), "content-type": "application/json" },
    body: JSON.stringify({ user: user.data, ...(streamId === undefined ? {} : { streamId }) }),
  });
});

// ── Recordings: README "Recordings" ──────────────────────────────────────────
app.route("/api/recordings", recordingAdminApi);
app.route("/bridge/recordings", recordingUploadApi);

app.get("/room", (c) => {
  if (!isUpgrade(c.req.raw)) return c.json({ error: "expected a WebSocket upgrade" }, 426);
  return relayLegacySocket(c.env, settingsOf(c.env).idleSocketMs);
});

app.get("/room/:room", (c) => {
  const parsed = roomName.safeParse(c.req.param("room"));
  if (!parsed.success) return c.json({ error: "invalid room name" }, 400);
  if (!isUpgrade(c.req.raw)) return c.json({ error: "expected a WebSocket upgrade" }, 426);
  // A fresh request: nothing the client sent besides the upgrade reaches the object.
  const headers = { Upgrade: "websocket", [ROOM_NAME_HEADER]: parsed.data };
  return roomStub(c.env, parsed.data).fetch(new Request(c.req.raw.url, { headers }));
});

app.get("/bridge/control", async (c) => {
  if (!isUpgrade(c.req.raw)) return c.json({ error: "expected a WebSocket upgrade" }, 426);
  const auth = await authenticateBridge(c.req.raw, c.env, CONTROL_AUDIENCE);
  if (!auth.ok) return auth.response;
  return pool(c.env).fetch(forwardWithClaims(c.req.raw, auth.claims));
});

app.get("/bridge/rooms/:room", async (c) => {
  const parsed = roomName.safeParse(c.req.param("room"));
  if (!parsed.success) return c.json({ error: "invalid room name" }, 400);
  if (!isUpgrade(c.req.raw)) return c.json({ error: "expected a WebSocket upgrade" }, 426);
  const auth = await authenticateBridge(c.req.raw, c.env, roomAudience(parsed.data));
  if (!auth.ok) return auth.response;
  return roomStub(c.env, parsed.data).fetch(
    forwardWithClaims(c.req.raw, auth.claims, { [ROOM_NAME_HEADER]: parsed.data }),
  );
});

app.onError((error, c) => {
  console.error(JSON.stringify({ msg: "request failed", path: c.req.path, error: String(error) }));
  return c.json({ error: "internal error" }, 500);
});

export default app;
