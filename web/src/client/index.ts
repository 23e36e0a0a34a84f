/**
 * Edge Room client library: the modern KurentoRoom.js.
 *
 *   const kurento = new KurentoRoom("wss://host/room");
 *   const room = kurento.Room({ room: "demo", user: "alice" });
 *   const camera = kurento.Stream(room, { audio: true, video: true });
 *   room.on("room-connected", () => camera.publish());
 *   room.on("stream-added", ({ stream }) => stream.playThumbnail("participants"));
 *   camera.on("access-accepted", () => room.connect());
 *   camera.init();
 */
export {
  KurentoRoom,
  DEFAULT_MEDIA_REQUEST_TIMEOUT_MS,
  DEFAULT_RECONNECT,
  defaultRoomUri,
  roomSocketUrl,
  type KurentoRoomOptions,
} from "./kurento-room.ts";
export {
  Room,
  type MediaErrorEvent,
  type RoomConnectedEvent,
  type RoomEvents,
  type RoomOptions,
  type ReconnectOptions,
} from "./room.ts";
export { Participant } from "./participant.ts";
export {
  Stream,
  DEFAULT_STREAM_ID,
  SCREEN_STREAM_ID,
  type StreamEvents,
  type StreamKind,
  type StreamOptions,
  type StreamStatus,
} from "./stream.ts";
/** The active-speaker detector, usable on its own with any level source. */
export {
  ActiveSpeakerSelector,
  DEFAULT_SPEAKING,
  SpeakerMonitor,
  SpeakingDetector,
  type LevelSource,
  type SpeakingOptions,
} from "./speaking.ts";
export { Emitter, type Listener, type NextOptions } from "./emitter.ts";
export { canTransition, CONNECTION_STATES, type CloseReason, type ConnectionState } from "./state.ts";
export { getAllRooms, getClientConfig, httpBase, type ClientConfig } from "./rest.ts";
export { clientConfigResponse as clientConfigSchema } from "../../../protocol/rest.ts";
export type { WebSocketConstructor, WebSocketLike } from "./connection.ts";
/** A server's error answer, or a transport failure (protocol codes). */
export { RpcRequestError } from "../../../protocol/rpc-peer.ts";
/** A call the library refused on its own (a `reason`, no protocol code). */
export { RoomClientError, type RoomClientErrorReason } from "./errors.ts";
export { INVALID_SESSION_CODE, JsonRpcCode, RoomCode } from "../../../protocol/errors.ts";
export type { VideoQuality } from "../../../protocol/room.ts";
