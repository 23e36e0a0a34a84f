import { describe, expect, it } from "vitest";
import { ORIGINAL_BANDWIDTH, publisherBandwidth, SIMULCAST_MAX_RECV_KBPS } from "../../bridge/media/room-endpoints.ts";
import { sendsSimulcast } from "../../bridge/media/sdp-kinds.ts";
import { simulcastLayersFor } from "../../web/src/client/negotiation.ts";

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

describe("simulcastLayersFor (the client's offer)", () => {
  it("asks for as many layers as Chromium sends for the capture, top layer at full size, none for a small camera", () => {
    const scales = (width?: number, height?: number) =>
      simulcastLayersFor(width, height)?.map((layer) => layer.scaleResolutionDownBy) ?? null;
    expect(scales(1280, 720)).toEqual([4, 2, 1]);
    expect(scales(960, 540)).toEqual([4, 2, 1]);
    expect(scales(640, 480)).toEqual([2, 1]);
    expect(scales(480, 270)).toEqual([2, 1]);
    // 320x240: Chromium would send the 80x60 quarter alone; one plain stream is the better picture.
    expect(scales(320, 240)).toBeNull();
    // Unknown size: the three layers (the browser drops what it has no room for).
    expect(scales(undefined, undefined)).toEqual([4, 2, 1]);
    for (const layers of [simulcastLayersFor(1280, 720), simulcastLayersFor(640, 480)])
      expect(new Set(layers?.map((layer) => layer.rid)).size).toBe(layers?.length);
  });
});
