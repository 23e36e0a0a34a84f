/**
 * `/room`: the original Room Server's single WebSocket URL. The room is only
 * known from the first `joinRoom` (or from the session id of a `connect` that
 * resumes a session), so the worker accepts the socket, waits for that frame,
 * then relays both ways to the room's object. Unmodified legacy apps work;
 * new apps should use `/room/:room`, which goes straight to the (hibernatable)
 * room object.
 */
import { JsonRpcCode, RoomCode, rpcError } from "./protocol/errors.ts";
import { decodeFrame, encodeError, encodeResult } from "./protocol/jsonrpc.ts";
import { name as roomName } from "./protocol/room.ts";
import { ROOM_NAME_HEADER } from "./do/room-object.ts";
import type { Env } from "./env.ts";
import { roomOfSessionId } from "./session-id.ts";
import { closeQuietly, safeSend } from "./ws-util.ts";

export function relayLegacySocket(env: Env): Response {
  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  server.accept();
  let upstream: WebSocket | null = null;
  let connecting: Promise<void> | null = null;
  const early: (string | ArrayBuffer)[] = [];

  const open = async (room: string, first: string | ArrayBuffer): Promise<void> => {
    const stub = env.ROOM.get(env.ROOM.idFromName(room));
    const response = await stub.fetch("https://room.internal/ws", {
      headers: { Upgrade: "websocket", [ROOM_NAME_HEADER]: room },
    });
    const ws = response.webSocket;
    if (!ws) {
      server.close(1011, "room unavailable");
      return;
    }
    ws.accept();
    ws.addEventListener("message", (event) => safeSend(server, event.data));
    ws.addEventListener("close", (event) => closeQuietly(server, event.code, event.reason));
    ws.addEventListener("error", () => closeQuietly(server, 1011, "room connection failed"));
    upstream = ws;
    ws.send(first);
    for (const frame of early.splice(0)) ws.send(frame);
  };

  server.addEventListener("message", (event) => {
    const data = event.data;
    if (upstream) return safeSend(upstream, data);
    if (connecting) {
      early.push(data);
      return;
    }
    const frame = decodeFrame(data);
    if (frame.kind === "invalid") return safeSend(server, encodeError(frame.id, frame.error));
    if (frame.kind !== "request" && frame.kind !== "notification") return;
    const id = frame.kind === "request" ? frame.id : null;
    const params = (typeof frame.params === "object" && frame.params !== null ? frame.params : {}) as Record<string, unknown>;
    let room: string | null = null;
    if (frame.method === "joinRoom") {
      const parsed = roomName.safeParse(params.room);
      if (!parsed.success) {
        if (id !== null) safeSend(server, encodeError(id, rpcError(JsonRpcCode.INVALID_PARAMS, "Invalid params for joinRoom: room must be a valid room name")));
        return;
      }
      room = parsed.data;
    } else if (frame.method === "connect" && typeof params.sessionId === "string") {
      room = roomOfSessionId(params.sessionId);
    } else if (frame.method === "ping") {
      if (id !== null) safeSend(server, encodeResult(id, { value: "pong", sessionId: "" }));
      return;
    }
    if (room === null) {
      if (id !== null) {
        safeSend(server, encodeError(id, rpcError(RoomCode.USER_NOT_FOUND, "This session has not joined a room (send joinRoom first)")));
      }
      return;
    }
    connecting = open(room, data).catch(() => closeQuietly(server, 1011, "room unavailable"));
  });
  server.addEventListener("close", (event) => {
    if (upstream) closeQuietly(upstream, event.code, event.reason);
  });
  return new Response(null, { status: 101, webSocket: client });
}
