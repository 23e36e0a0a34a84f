// The embedded media server: a Kurento-protocol server on werift, so the system runs without Kurento Media Server.
// It runs as its own process (main.ts) or in-process; it imports nothing of this repo outside media-server/.
export { startMediaServer, type MediaServerHandle } from "./server.ts";
export { mediaServerOptionsFromEnv, type MediaServerOptions, DEFAULT_WEBRTC_SETTINGS } from "./config.ts";
export type { WebRtcSettings, VideoCodecName } from "./webrtc-config.ts";
export type { RpcStats as MediaServerStats } from "./kurento-rpc.ts";
export { SUPPORTED_TYPES, KNOWN_UNSUPPORTED_TYPES } from "./object-types.ts";
