import { z } from "zod";
import { iceCandidateSchema } from "../../protocol.ts";
import { MEDIA_ELEMENT_OPERATIONS } from "../media-element.ts";
import { noParams, type Operation, operation, operationTable } from "../operations.ts";
import type { WebRtcEndpoint } from "../webrtc-endpoint.ts";
import { VIDEO_QUALITIES } from "./layer-selector.ts";
import {
  DEFAULT_STUN_PORT,
  iceServersOf,
  stunServerAddressSchema,
  stunServerPortSchema,
  turnUrlSchema,
} from "./ice-servers.ts";

/**
 * Bandwidth settings in kbps; 0 means "no limit". Names are KMS property
 * names (the setter's parameter is the same name).
 */
export const BANDWIDTH_PROPERTIES = [
  "maxVideoSendBandwidth",
  "minVideoSendBandwidth",
  "maxVideoRecvBandwidth",
  "minVideoRecvBandwidth",
  "maxAudioRecvBandwidth",
  "maxEncoderBitrate",
  "minEncoderBitrate",
  "maxOutputBitrate",
  "minOutputBitrate",
  "mtu",
] as const;
export type BandwidthProperty = (typeof BANDWIDTH_PROPERTIES)[number];

/**
 * Network settings as KMS names them. STUN and TURN are used for the
 * endpoint's own ICE gathering (ice-servers.ts: KMS's formats, checked);
 * the others are accepted and remembered so applications configured for KMS
 * keep working.
 */
const NETWORK_PROPERTIES = {
  stunServerAddress: stunServerAddressSchema,
  stunServerPort: stunServerPortSchema,
  turnUrl: turnUrlSchema,
  iceTcp: z.boolean(),
  networkInterfaces: z.string().max(1000),
  externalIPv4: z.string().max(100),
  externalIPv6: z.string().max(100),
  externalAddress: z.string().max(200),
} as const;
export type NetworkProperty = keyof typeof NETWORK_PROPERTIES;
const ICE_SERVER_PROPERTIES: ReadonlySet<NetworkProperty> = new Set(["stunServerAddress", "stunServerPort", "turnUrl"]);

const offerOptionsSchema = z.object({
  options: z
    .object({ offerToReceiveAudio: z.boolean().optional(), offerToReceiveVideo: z.boolean().optional() })
    .loose()
    .nullish(),
});

const dataChannelSchema = z.object({
  label: z.string().max(1000).nullish(),
  ordered: z.boolean().nullish(),
  maxPacketLifeTime: z.number().int().min(-1).nullish(),
  maxRetransmits: z.number().int().min(-1).nullish(),
  protocol: z.string().max(1000).nullish(),
});

const capitalised = (name: string) => name.charAt(0).toUpperCase() + name.slice(1);

/** `get<Property>`/`set<Property>` for every bandwidth setting. */
function bandwidthOperations(): Record<string, Operation<WebRtcEndpoint>> {
  const operations: Record<string, Operation<WebRtcEndpoint>> = {};
  for (const name of BANDWIDTH_PROPERTIES) {
    const suffix = capitalised(name);
    operations[`get${suffix}`] = operation(noParams, (endpoint) => endpoint.bandwidth.get(name) ?? 0);
    operations[`set${suffix}`] = operation(
      z.object({ [name]: z.number().int().min(0).max(10_000_000) }),
      (endpoint, params) => {
        endpoint.bandwidth.set(name, Number(params[name]));
      },
    );
  }
  return operations;
}

/** `get<Property>`/`set<Property>` for every network setting; unset ones read as false (booleans), 3478 (the STUN port) or "". */
function networkOperations(): Record<string, Operation<WebRtcEndpoint>> {
  const operations: Record<string, Operation<WebRtcEndpoint>> = {};
  for (const [name, schema] of Object.entries(NETWORK_PROPERTIES) as Array<[NetworkProperty, z.ZodType]>) {
    const suffix = capitalised(name);
    const unset = schema instanceof z.ZodBoolean ? false : name === "stunServerPort" ? DEFAULT_STUN_PORT : "";
    operations[`get${suffix}`] = operation(noParams, (endpoint) => endpoint.network.get(name) ?? unset);
    operations[`set${suffix}`] = operation(z.object({ [name]: schema }), (endpoint, params) => {
      endpoint.network.set(name, params[name]);
      if (ICE_SERVER_PROPERTIES.has(name)) {
        endpoint.negotiation.setIceServers(
          iceServersOf({
            stunServerAddress: endpoint.network.get("stunServerAddress"),
            stunServerPort: endpoint.network.get("stunServerPort"),
            turnUrl: endpoint.network.get("turnUrl"),
          }),
        );
      }
    });
  }
  return operations;
}

/**
 * Operations of a WebRtcEndpoint (kurento.WebRtcEndpoint and the
 * BaseRtpEndpoint/SdpEndpoint types above it), on top of the MediaElement
 * ones. Built once at module load; each entry hands its validated params to
 * the endpoint's negotiation, data channels or settings.
 */
export const WEBRTC_ENDPOINT_OPERATIONS = operationTable<WebRtcEndpoint>(MEDIA_ELEMENT_OPERATIONS, {
  processOffer: operation(z.object({ offer: z.string() }), (endpoint, { offer }) =>
    endpoint.negotiation.processOffer(offer),
  ),
  generateOffer: operation(offerOptionsSchema, (endpoint, { options }) =>
    endpoint.negotiation.generateOffer(options?.offerToReceiveAudio !== false, options?.offerToReceiveVideo !== false),
  ),
  processAnswer: operation(z.object({ answer: z.string() }), (endpoint, { answer }) =>
    endpoint.negotiation.processAnswer(answer),
  ),
  getLocalSessionDescriptor: operation(noParams, (endpoint) => endpoint.negotiation.localDescriptor()),
  getRemoteSessionDescriptor: operation(noParams, (endpoint) => endpoint.negotiation.remoteDescriptor()),
  gatherCandidates: operation(noParams, (endpoint) => {
    endpoint.negotiation.gatherCandidates();
  }),
  addIceCandidate: operation(z.object({ candidate: iceCandidateSchema.loose() }), (endpoint, { candidate }) =>
    endpoint.negotiation.addIceCandidate(candidate),
  ),
  getMediaState: operation(noParams, (endpoint) => endpoint.mediaState),
  getConnectionState: operation(noParams, (endpoint) => endpoint.mediaState),
  getIceConnectionState: operation(noParams, (endpoint) => endpoint.negotiation.iceConnections()),
  getICECandidatePairs: operation(noParams, (endpoint) => endpoint.negotiation.candidatePairs()),
  getIceCandidatePairs: operation(noParams, (endpoint) => endpoint.negotiation.candidatePairs()),
  requestKeyframe: operation(noParams, (endpoint) => {
    endpoint.requestKeyframe();
  }),
  // Additions of this server (KMS has no simulcast): the layer a subscriber receives, and what it gets now.
  setVideoQuality: operation(z.object({ quality: z.enum(VIDEO_QUALITIES) }), (endpoint, { quality }) => {
    endpoint.setVideoQuality(quality);
  }),
  getVideoQuality: operation(noParams, (endpoint) => ({
    quality: endpoint.videoQuality,
    layer: endpoint.currentVideoLayer ?? null,
  })),
  getSimulcastLayers: operation(noParams, (endpoint) => endpoint.simulcastLayers),
  // Void, as in KMS: the werift channel object is not something a reply can carry.
  createDataChannel: operation(dataChannelSchema, (endpoint, params) => {
    endpoint.dataChannels.create(params);
  }),
  closeDataChannel: operation(z.object({ channelId: z.number().int() }), (endpoint, { channelId }) => {
    endpoint.dataChannels.close(channelId);
  }),
  ...bandwidthOperations(),
  ...networkOperations(),
});
