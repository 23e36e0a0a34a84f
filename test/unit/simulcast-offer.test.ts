import { describe, expect, it } from "vitest";
import { ORIGINAL_BANDWIDTH, publisherBandwidth, SIMULCAST_MAX_RECV_KBPS } from "../../bridge/media/room-endpoints.ts";
import { sendsSimulcast } from "../../bridge/media/sdp-kinds.ts";

// A simulcast publisher's endpoint may receive all its layers: the bridge
// finds simulcast in the offer and raises only that endpoint's receive limit.

const AUDIO = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\n";
const VIDEO = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n";
const LAYERS = "a=rid:l send\r\na=rid:m send\r\na=rid:h send\r\na=simulcast:send l;m;h\r\n";

describe("sendsSimulcast", () => {
  it("finds a=simulcast:send in the video section only", () => {
    expect(sendsSimulcast(`v=0\r\n${AUDIO}${VIDEO}${LAYERS}`)).toBe(true);
    expect(sendsSimulcast(`v=0\r\n${AUDIO}${VIDEO}`)).toBe(false);
    // In the audio section, or receive-only, or a rejected video section: not a simulcast publisher.
    expect(sendsSimulcast(`v=0\r\n${AUDIO}${LAYERS}${VIDEO}`)).toBe(false);
    expect(sendsSimulcast(`v=0\r\n${VIDEO}a=simulcast:recv l;m;h\r\n`)).toBe(false);
    expect(sendsSimulcast(`v=0\r\n${VIDEO.replace("m=video 9", "m=video 0")}${LAYERS}`)).toBe(false);
    expect(sendsSimulcast("")).toBe(false);
  });
});

describe("publisherBandwidth", () => {
  it("raises the receive limit of a simulcast publisher and leaves the rest alone", () => {
    expect(publisherBandwidth(ORIGINAL_BANDWIDTH, false)).toBe(ORIGINAL_BANDWIDTH);
    expect(publisherBandwidth(ORIGINAL_BANDWIDTH, true)).toEqual({
      ...ORIGINAL_BANDWIDTH,
      maxVideoRecvKbps: SIMULCAST_MAX_RECV_KBPS,
    });
    // An operator's higher limit stays.
    const generous = { ...ORIGINAL_BANDWIDTH, maxVideoRecvKbps: 8000 };
    expect(publisherBandwidth(generous, true).maxVideoRecvKbps).toBe(8000);
  });
});
