import {
  type PeerConfig,
  type RTCRtpCodecParameters,
  useFIR,
  useH264,
  useNACK,
  useOPUS,
  usePLI,
  useREMB,
  useSdesMid,
  useSdesRTPStreamId,
  useVP8,
} from "werift";

export type VideoCodecName = "VP8" | "H264";

/** How the server's peer connections gather ICE candidates and which codecs they offer. */
export interface WebRtcSettings {
  /** Only 127.0.0.1 candidates and pairs (tests, single-machine setups). */
  loopbackOnly: boolean;
  /** UDP port range for ICE, e.g. [40000, 40999]; undefined lets the OS pick. */
  icePortRange: [number, number] | undefined;
  /** Extra local addresses to gather host candidates on, which werift skips by default (loopback, tun interfaces). */
  additionalHostAddresses: string[];
  videoCodecs: VideoCodecName[];
  /** REMB sent to publishers once a second when nothing lowers it, in kbps. */
  rembKbps: number;
}

const videoFeedback = () => [useNACK(), usePLI(), useFIR(), useREMB()];

function videoCodec(name: VideoCodecName): RTCRtpCodecParameters {
  switch (name) {
    case "VP8":
      return useVP8({ payloadType: 96, rtcpFeedback: videoFeedback() });
    case "H264":
      return useH264({
        payloadType: 102,
        rtcpFeedback: videoFeedback(),
        parameters: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
      });
  }
}

function isLoopback(address: string): boolean {
  return address === "127.0.0.1" || address === "::1";
}

/**
 * werift's defaults would ask a public STUN server (no internet here) and
 * negotiate transport-cc, whose feedback collapsed Chrome's bandwidth estimate
 * in the spike; so: no ICE servers, no transport-cc, REMB instead.
 */
export function peerConfig(settings: WebRtcSettings): Partial<PeerConfig> {
  const config: Partial<PeerConfig> = {
    iceServers: [],
    bundlePolicy: "max-bundle",
    codecs: {
      audio: [useOPUS({ payloadType: 111 })],
      video: settings.videoCodecs.map(videoCodec),
    },
    // rtp-stream-id: a simulcast publisher's packets name their layer (RID) with it.
    headerExtensions: { audio: [useSdesMid()], video: [useSdesMid(), useSdesRTPStreamId()] },
    icePortRange: settings.icePortRange,
    iceAdditionalHostAddresses: [...(settings.loopbackOnly ? ["127.0.0.1"] : []), ...settings.additionalHostAddresses],
  };
  if (settings.loopbackOnly) {
    config.iceInterfaceAddresses = { udp4: "127.0.0.1" };
    config.iceUseIpv6 = false;
    config.iceFilterCandidatePair = (pair) =>
      isLoopback(pair.localCandidate.host) && isLoopback(pair.remoteCandidate.host);
  }
  return config;
}

/** In loopback-only mode a remote candidate for another address could never pair; dropping it early keeps werift from probing it. */
export function acceptsRemoteCandidate(settings: WebRtcSettings, candidate: string): boolean {
  if (!settings.loopbackOnly || candidate.trim() === "") return true;
  const fields = candidate.replace(/^a=/, "").split(/\s+/);
  const address = fields[4];
  return address !== undefined && isLoopback(address);
}
