import { describe, expect, it } from "vitest";
import { startsKeyframe } from "../../media-server/objects/webrtc/keyframe.ts";
import { BestLayer, LayerSelector } from "../../media-server/objects/webrtc/layer-selector.ts";
import type { ForwardedRtp } from "../../media-server/rtp-forwarding.ts";

// A simulcast subscriber's layer choice: one layer passes, a switch waits for
// the new layer's keyframe (and asks for it), and a paused layer is replaced.

const VP8 = "video/VP8";
/** VP8 payload descriptor (S=1, partition 0, no extension) then the VP8 header's first byte (P bit 0: keyframe). */
const vp8Key = Buffer.from([0x10, 0x00, 0x9d, 0x01]);
const vp8Delta = Buffer.from([0x10, 0x01, 0x9d, 0x01]);
/** Continuation packet of a frame: not a start of partition. */
const vp8Middle = Buffer.from([0x00, 0x00]);

describe("startsKeyframe", () => {
  it("reads VP8 descriptors with and without the extension", () => {
    expect(startsKeyframe(VP8, vp8Key)).toBe(true);
    expect(startsKeyframe(VP8, vp8Delta)).toBe(false);
    expect(startsKeyframe(VP8, vp8Middle)).toBe(false);
    // X=1, I=1 with a 15-bit picture id (M bit), L=1, T=1: four extension bytes.
    expect(startsKeyframe(VP8, Buffer.from([0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 0x00]))).toBe(true);
    expect(startsKeyframe(VP8, Buffer.from([0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 0x01]))).toBe(false);
  });

  it("reads H.264 IDR, SPS, STAP-A and the first FU-A fragment", () => {
    expect(startsKeyframe("video/H264", Buffer.from([0x65]))).toBe(true);
    expect(startsKeyframe("video/H264", Buffer.from([0x67]))).toBe(true);
    expect(startsKeyframe("video/H264", Buffer.from([0x41]))).toBe(false);
    expect(startsKeyframe("video/H264", Buffer.from([0x7c, 0x85]))).toBe(true);
    expect(startsKeyframe("video/H264", Buffer.from([0x7c, 0x05]))).toBe(false);
    expect(startsKeyframe("video/H264", Buffer.from([0x78, 0x00, 0x01, 0x67, 0x00, 0x01, 0x68]))).toBe(true);
  });
});

describe("LayerSelector", () => {
  const layer = (index: number) => ({ index, count: 3 });

  it("forwards the wanted layer from its keyframe on, and only that layer", () => {
    const asked: number[] = [];
    const selector = new LayerSelector((l) => asked.push(l));
    const now = 0;
    // All three layers are seen first, so "high" means layer 2.
    for (const index of [0, 1]) expect(selector.accept(layer(index), VP8, vp8Delta, now)).toBe(false);
    expect(selector.accept(layer(2), VP8, vp8Delta, now)).toBe(false);
    expect(asked).toContain(2);
    expect(selector.accept(layer(2), VP8, vp8Key, now + 10)).toBe(true);
    expect(selector.accept(layer(2), VP8, vp8Delta, now + 10)).toBe(true);
    expect(selector.accept(layer(1), VP8, vp8Key, now)).toBe(false);
    expect(selector.currentLayer).toBe(2);
  });

  it("switches at the new layer's keyframe and keeps the old one until then", () => {
    const asked: number[] = [];
    const selector = new LayerSelector((l) => asked.push(l));
    const now = 0;
    for (const index of [0, 1, 2]) selector.accept(layer(index), VP8, vp8Key, now);
    expect(selector.currentLayer).toBe(2);
    selector.setQuality("low");
    expect(selector.accept(layer(0), VP8, vp8Delta, now + 10)).toBe(false);
    expect(asked).toEqual([0]);
    expect(selector.accept(layer(2), VP8, vp8Delta, now)).toBe(true);
    expect(selector.accept(layer(0), VP8, vp8Key, now + 10)).toBe(true);
    expect(selector.accept(layer(2), VP8, vp8Delta, now)).toBe(false);
    expect(selector.currentLayer).toBe(0);
  });

  it("falls back to the nearest layer still sending when the wanted one pauses", () => {
    const selector = new LayerSelector(() => {});
    const now = 0;
    for (const index of [0, 1, 2]) selector.accept(layer(index), VP8, vp8Key, now);
    // Layer 2 goes quiet (the publisher's encoder dropped it); layer 1 takes over at its keyframe.
    const later = now + 2000;
    expect(selector.accept(layer(1), VP8, vp8Delta, later)).toBe(false);
    expect(selector.accept(layer(1), VP8, vp8Key, later + 10)).toBe(true);
    expect(selector.currentLayer).toBe(1);
  });
});

describe("LayerSelector and the subscriber's link", () => {
  const layer = (index: number) => ({ index, count: 3 });
  /** 100 packets a second of every layer from `from` to `to` (ms), `bytes` each; returns what passed per layer. */
  function run(selector: LayerSelector, from: number, to: number, keyEvery = 500): number[] {
    const passed = [0, 0, 0];
    for (let now = from; now < to; now += 10) {
      const key = (now - from) % keyEvery === 0;
      for (const index of [0, 1, 2]) {
        const bytes = [200, 600, 1200][index] ?? 0;
        const payload = Buffer.alloc(bytes, 0);
        (key ? vp8Key : vp8Delta).copy(payload);
        if (selector.accept(layer(index), VP8, payload, now)) passed[index] = (passed[index] ?? 0) + 1;
      }
    }
    return passed;
  }

  it("steps down one layer on receiver-report loss, and tries the layer above again after a hold", () => {
    const selector = new LayerSelector(() => {});
    run(selector, 0, 5000);
    expect(selector.currentLayer).toBe(2);
    selector.noteLoss(0.25, 5000);
    expect(selector.bandwidthCap).toBe(1);
    const during = run(selector, 5000, 12_000);
    expect(selector.currentLayer).toBe(1);
    expect(during[1]).toBeGreaterThan(0);
    // The hold (8 s) is over: the top layer again, at its keyframe.
    run(selector, 12_000, 15_000);
    expect(selector.currentLayer).toBe(2);
    expect(selector.bandwidthCap).toBeUndefined();
  });

  it("ignores loss just after a switch (it is about the old layer) and small loss at any time", () => {
    const selector = new LayerSelector(() => {});
    run(selector, 0, 1000);
    selector.noteLoss(0.5, 1000);
    expect(selector.bandwidthCap).toBeUndefined();
    run(selector, 1000, 5000);
    selector.noteLoss(0.05, 5000);
    expect(selector.bandwidthCap).toBeUndefined();
    expect(selector.currentLayer).toBe(2);
  });

  it("takes a falling REMB below the layer's rate as congestion, not a REMB that lags behind a switch up", () => {
    const selector = new LayerSelector(() => {});
    run(selector, 0, 5000);
    // Top layer: 100 × 1200 bytes a second ≈ 960 kbps. A REMB well below that but rising is the estimator catching up.
    selector.noteEstimate(300_000, 5000);
    selector.noteEstimate(330_000, 6000);
    expect(selector.bandwidthCap).toBeUndefined();
    // The estimator backs off (overuse): one layer down.
    selector.noteEstimate(250_000, 7000);
    expect(selector.bandwidthCap).toBe(1);
  });

  it("waits longer before the next try when congestion comes back after a probe up", () => {
    const selector = new LayerSelector(() => {});
    run(selector, 0, 5000);
    selector.noteLoss(0.3, 5000);
    run(selector, 5000, 13_500);
    expect(selector.currentLayer).toBe(2);
    // The probe up fails at once (after the switch settled): the hold doubles to 16 s.
    selector.noteLoss(0.3, 17_000);
    run(selector, 17_000, 30_000);
    expect(selector.currentLayer).toBe(1);
    run(selector, 30_000, 35_000);
    expect(selector.currentLayer).toBe(2);
  });

  it("keeps the quality asked for as the ceiling: a low subscriber never gets more", () => {
    const selector = new LayerSelector(() => {});
    selector.setQuality("low");
    const passed = run(selector, 0, 3000);
    expect(selector.currentLayer).toBe(0);
    expect(passed[1]).toBe(0);
    expect(passed[2]).toBe(0);
  });
});

describe("BestLayer (what a filter or a recorder takes of a simulcast source)", () => {
  const rtp = (index: number | undefined, payload: Buffer) =>
    ({
      mimeType: VP8,
      packet: { payload },
      ...(index === undefined ? {} : { layer: { index, count: 3 } }),
    }) as unknown as ForwardedRtp;

  it("takes the lowest layer when it is the only one sent (a small capture), and moves up when a better one starts", () => {
    const asked: number[] = [];
    const best = new BestLayer((layer) => asked.push(layer));
    // Only layer 0 is sent: it is taken from its keyframe on.
    expect(best.accepts(rtp(0, vp8Delta), 0)).toBe(false);
    expect(asked).toEqual([0]);
    expect(best.accepts(rtp(0, vp8Key), 10)).toBe(true);
    expect(best.accepts(rtp(0, vp8Delta), 20)).toBe(true);
    // Layer 2 starts: layer 0 goes on until layer 2's keyframe.
    expect(best.accepts(rtp(2, vp8Delta), 30)).toBe(false);
    expect(asked).toContain(2);
    expect(best.accepts(rtp(0, vp8Delta), 40)).toBe(true);
    expect(best.accepts(rtp(2, vp8Key), 50)).toBe(true);
    expect(best.accepts(rtp(0, vp8Delta), 60)).toBe(false);
    expect(best.currentLayer).toBe(2);
  });

  it("passes every packet of a source without simulcast", () => {
    const best = new BestLayer(() => {});
    expect(best.accepts(rtp(undefined, vp8Delta), 0)).toBe(true);
    expect(best.currentLayer).toBeUndefined();
  });
});
