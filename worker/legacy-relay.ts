/**
 * `/room`: the original Room Server's single WebSocket URL. The room is only
 * known from the first `joinRoom` (or from the session id of a `connect` that
 * resumes a session), so the worker accepts the socket, waits for that frame,
 * then relays both ways to the room's object. Unmodified legacy apps work;
 * new apps should use `/room/:room`, which goes straight to the (hibernatable)
 * room object.
 *
 * A first `joinRoom` that the room refuses (duplicate name, creation not
 * allowed…) unties the socket again, so the client may try another room.
 *
 * Before the room is chosen the relay answers on its own: `ping`, -32601 for
 * an unknown method, 102 for a room method before joining. While the room's
 * object is being reached it buffers at most MAX_EARLY_FRAMES frames or
 * MAX_EARLY_BYTES bytes (more: an error, then the socket is closed with
 * 1008), and a socket that chooses no room within IDLE_SOCKET_SECONDS is
 * closed.
 */
import { INVALID_SESSION_CODE, JsonRpcCode, RoomCode, rpcError } from "../protocol/errors.ts";
import { decodeFrame, encodeError, encodeResult, type RequestId } from "../protocol/jsonrpc.ts";
import { HEARTBEAT_REQUEST, HEARTBEAT_RESPONSE, isRoomMethod, name as roomName } from "../protocol/room.ts";
import { CloseCode } from "../protocol/close-codes.ts";
import { ROOM_NAME_HEADER } from "./do/room-object.ts";
import type { Env } from "./env.ts";
import { roomOfSessionId } from "./session-id.ts";
import { closeQuietly, safeSend } from "./ws-util.ts";

type Data = string | ArrayBuffer;

/** Frames buffered while the room's object is being reached (after that they are relayed as they come). */
export const MAX_EARLY_FRAMES = 32;
export const MAX_EARLY_BYTES = 1024 * 1024;

function byteLength(data: Data): number {
  return typeof data === "string" ? new TextEncoder().encode(data).byteLength : data.byteLength;
}

export function relayLegacySocket(env: Env, idleMs: number): Response {
  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  server.accept();
  let upstream: WebSocket | null = null;
  let connecting = false;
  /** The id of the joinRoom that opened the current upstream, until it succeeds. */
  let tentativeJoin: RequestId | null = null;
  const early: Data[] = [];
  let earlyBytes = 0;
  let ended = false;
  /** A socket that never reaches a room is closed; the timer lives in the stateless worker, not in an object. */
  const armIdle = () =>
    setTimeout(() => {
      if (upstream === null && !connecting) {
        ended = true;
        closeQuietly(server, CloseCode.POLICY_VIOLATION, `no joinRoom or connect within ${idleMs / 1000} s`);
      }
    }, idleMs);
  let idle = armIdle();
  // Binary frames arrive as Blobs here; reading one is asynchronous, so frames
  // are handled through one chain to keep their order.
  let chain: Promise<void> = Promise.resolve();

  const open = async (room: string, first: Data, joinId: RequestId | null): Promise<void> => {
    const stub = env.ROOM.get(env.ROOM.idFromName(room));
    const response = await stub.fetch("https://room.internal/ws", {
      headers: { Upgrade: "websocket", [ROOM_NAME_HEADER]: room },
    });
    const ws = response.webSocket;
    if (!ws) {
      closeQuietly(server, 1011, "room unavailable");
      return;
    }
    ws.accept();
    if (ended) {
      closeQuietly(ws, CloseCode.NORMAL, "client gone");
      return;
    }
    tentativeJoin = joinId;
    ws.addEventListener("message", (event) => {
      const data = event.data as Data;
      safeSend(server, data);
      if (tentativeJoin !== null && typeof data === "string") settleJoin(ws, data);
    });
    ws.addEventListener("close", (event) => {
      if (upstream === ws) closeQuietly(server, event.code, event.reason);
    });
    ws.addEventListener("error", () => {
      if (upstream === ws) closeQuietly(server, 1011, "room connection failed");
    });
    upstream = ws;
    connecting = false;
    clearTimeout(idle);
    ws.send(first);
    for (const frame of early.splice(0)) ws.send(frame);
  };

  /** Watches for the answer to the joinRoom that opened `ws`: an error unties the socket from that room. */
  const settleJoin = (ws: WebSocket, text: string): void => {
    const answer = decodeFrame(text);
    if (answer.kind !== "response" || answer.id !== tentativeJoin) return;
    tentativeJoin = null;
    if (!answer.error) return;
    upstream = null;
    closeQuietly(ws, 1000, "join refused");
    clearTimeout(idle);
    idle = armIdle();
  };

  const handle = (data: Data): void => {
    if (ended) return;
    if (upstream) return safeSend(upstream, data);
    if (data === HEARTBEAT_REQUEST) return safeSend(server, HEARTBEAT_RESPONSE);
    if (connecting) {
      earlyBytes += byteLength(data);
      if (early.length >= MAX_EARLY_FRAMES || earlyBytes > MAX_EARLY_BYTES) {
        ended = true;
        early.length = 0;
        const frame = decodeFrame(data);
        const id = frame.kind === "request" || frame.kind === "invalid" ? frame.id : null;
        const message = `Too many frames before the room answered (at most ${MAX_EARLY_FRAMES} frames or ${MAX_EARLY_BYTES} bytes); wait for the joinRoom answer`;
        if (id !== null) safeSend(server, encodeError(id, rpcError(JsonRpcCode.RATE_LIMITED, message)));
        closeQuietly(server, CloseCode.POLICY_VIOLATION, "too many frames before joining");
        return;
      }
      early.push(data);
      return;
    }
    const frame = decodeFrame(data);
    if (frame.kind === "invalid") return safeSend(server, encodeError(frame.id, frame.error));
    if (frame.kind !== "request" && frame.kind !== "notification") return;
    const id = frame.kind === "request" ? frame.id : null;
    const answer = (result: string): void => {
      if (id !== null) safeSend(server, result);
    };
    const params = (typeof frame.params === "object" && frame.params !== null ? frame.params : {}) as Record<
      string,
      unknown
    >;
    let room: string | null = null;
    switch (frame.method) {
      case "joinRoom": {
        const parsed = roomName.safeParse(params.room);
        if (!parsed.success) {
          return answer(
            encodeError(
              id,
              rpcError(JsonRpcCode.INVALID_PARAMS, "Invalid params for joinRoom: room must be a valid room name"),
            ),
          );
        }
        room = parsed.data;
        break;
      }
      case "connect": {
        if (typeof params.sessionId !== "string") return answer(encodeResult(id ?? 0, { sessionId: "" }));
        // The room comes from the client: the same rule as a room named in joinRoom.
        const fromSession = roomOfSessionId(params.sessionId);
        const checked = fromSession === null ? null : roomName.safeParse(fromSession);
        room = checked?.success ? checked.data : null;
        if (room === null) {
          return answer(
            encodeError(
              id,
              rpcError(INVALID_SESSION_CODE, "Invalid session: unknown, or its reconnection window has expired"),
            ),
          );
        }
        break;
      }
      case "ping":
        return answer(encodeResult(id ?? 0, { value: "pong", sessionId: "" }));
      default:
        // isRoomMethod looks the name up with Object.hasOwn: `constructor`, `__proto__`… are unknown methods.
        if (!isRoomMethod(frame.method)) {
          return answer(encodeError(id, rpcError(JsonRpcCode.METHOD_NOT_FOUND, `Method not found: ${frame.method}`)));
        }
        return answer(
          encodeError(
            id,
            rpcError(RoomCode.USER_NOT_FOUND, "This session has not joined a room (send joinRoom first)"),
          ),
        );
    }
    connecting = true;
    open(room, data, frame.method === "joinRoom" ? id : null).catch(() =>
      closeQuietly(server, 1011, "room unavailable"),
    );
  };

  const enqueue = (task: () => void | Promise<void>): void => {
    chain = chain.then(task).catch((error: unknown) => {
      console.error(JSON.stringify({ msg: "legacy relay failed", error: String(error) }));
      closeQuietly(server, 1011, "relay failed");
    });
  };
  server.addEventListener("message", (event) => {
    const data = event.data as Data | Blob;
    if (typeof data === "string" || data instanceof ArrayBuffer) {
      enqueue(() => handle(data));
    } else {
      const bytes = data.arrayBuffer();
      enqueue(async () => handle(await bytes));
    }
  });
  server.addEventListener("close", (event) => {
    clearTimeout(idle);
    ended = true;
    if (upstream) closeQuietly(upstream, event.code, event.reason);
  });
  return new Response(null, { status: 101, webSocket: client });
}
