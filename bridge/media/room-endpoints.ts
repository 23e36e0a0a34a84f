/**
 * What every WebRtcEndpoint of a room gets: the original's bandwidth limits,
 * and its events (ICE candidates, media state, errors) forwarded to the room
 * while it is still the current endpoint of its name.
 */
import type { MediaEvent } from "../../protocol/bridge.ts";
import { streamIdOf, WEBCAM_STREAM } from "../../protocol/room.ts";
import { turnCredentials } from "../../protocol/ice-servers.ts";
import type { MediaIceConfig } from "../config.ts";
import type { Bandwidth, EndpointIceServers, WebRtcEndpoint } from "./media-server.ts";

/**
 * The original's limits (kurento-room-sdk MediaEndpoint, set on every
 * WebRtcEndpoint it creates): video 300–600 kbps both ways.
 */
export const ORIGINAL_BANDWIDTH: Bandwidth = {
  maxVideoRecvKbps: 600,
  minVideoRecvKbps: 300,
  maxVideoSendKbps: 600,
  minVideoSendKbps: 300,
};

/**
 * A simulcast publisher sends all its layers at once (the client's three
 * come to about 2.2 Mbps): its receive limit is raised to this, so the
 * REMB the server sends it leaves room for the top layer. Subscribers keep
 * their limits; each is met by the layer it gets.
 */
export const SIMULCAST_MAX_RECV_KBPS = 2500;

/** The limits of a publisher's endpoint: a simulcast one may receive all its layers. */
export function publisherBandwidth(base: Bandwidth, simulcast: boolean): Bandwidth {
  if (!simulcast) return base;
  return { ...base, maxVideoRecvKbps: Math.max(base.maxVideoRecvKbps, SIMULCAST_MAX_RECV_KBPS) };
}

/** Limits are advice: a server without them still carries media, so a failure is only reported. */
export async function applyBandwidth(
  endpoint: WebRtcEndpoint,
  bandwidth: Bandwidth,
  onFailure: (message: string) => void,
): Promise<void> {
  try {
    await endpoint.setBandwidth(bandwidth);
  } catch (error) {
    onFailure(error instanceof Error ? error.message : String(error));
  }
}

/**
 * What one endpoint gets from MEDIA ICE settings (KMS_STUN_*, KMS_TURN_*): a
 * KMS_TURN_URL without credentials gets fresh TURN REST API ones, user
 * "<expiry>:<bridge id>" (KMS's turnUrl parser takes the user part greedily
 * and a base64 password has no ':', so the REST user name's ':' is fine).
 */
export async function endpointIceServers(
  ice: MediaIceConfig,
  bridgeId: string,
  nowSeconds?: number,
): Promise<EndpointIceServers> {
  let turnUrl = ice.turnUrl ?? undefined;
  if (turnUrl !== undefined && ice.turnSecret !== null) {
    const { username, credential } = await turnCredentials(ice.turnSecret, bridgeId, ice.turnTtlSeconds, nowSeconds);
    turnUrl = `${username}:${credential}@${turnUrl}`;
  }
  return {
    ...(ice.stunAddress !== null ? { stunAddress: ice.stunAddress, stunPort: ice.stunPort } : {}),
    ...(turnUrl !== undefined ? { turnUrl } : {}),
  };
}

/** Like bandwidth limits, STUN/TURN is advice to the media server: a failure is reported, the endpoint still works on host candidates. */
export async function applyIceServers(
  endpoint: WebRtcEndpoint,
  ice: MediaIceConfig | null,
  bridgeId: string,
  onFailure: (message: string) => void,
): Promise<void> {
  if (!ice) return;
  try {
    await endpoint.setIceServers(await endpointIceServers(ice, bridgeId));
  } catch (error) {
    onFailure(error instanceof Error ? error.message : String(error));
  }
}

export interface EndpointOwner {
  /** Who holds the endpoint. */
  readonly user: string;
  /** The endpoint's name: whose stream it carries (the user's own for a publisher, the sender's for a subscription). */
  readonly name: string;
  /** Which of `name`'s streams it carries (`webcam`, `screen`…). */
  readonly stream: string;
  /** Still the endpoint of that name (not replaced or released)? Events of an old one are dropped. */
  readonly current: () => boolean;
  readonly emit: (event: MediaEvent) => void;
}

export function watchEndpoint(endpoint: WebRtcEndpoint, owner: EndpointOwner): void {
  const { user, name, current, emit } = owner;
  // The webcam is not named, so a room that knows only webcams hears exactly what it always did.
  const stream = owner.stream === WEBCAM_STREAM ? {} : { stream: owner.stream };
  endpoint.onIceCandidate((candidate) => {
    if (!current()) return;
    const { candidate: text, sdpMid, sdpMLineIndex } = candidate;
    emit({ event: "iceCandidate", user, endpoint: name, ...stream, candidate: text, sdpMid, sdpMLineIndex });
  });
  endpoint.onMediaState((state) => {
    if (current()) emit({ event: "mediaState", user, endpoint: name, ...stream, state });
  });
  endpoint.onError((error) => {
    // The stream the endpoint carries is the one that failed.
    if (current()) emit({ event: "mediaError", user, error, streams: [streamIdOf(name, owner.stream)] });
  });
}
