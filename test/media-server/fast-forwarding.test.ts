import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { RtpHeader, RtpPacket, SrtpSession } from "werift";
import { RtpRewriter } from "../../media-server/objects/webrtc/rtp-rewriter.ts";
import {
  RolloverTracker,
  SRTP_AEAD_AES_128_GCM,
  SRTP_AES128_CM_HMAC_SHA1_80,
  type SrtpProfile,
  SrtpContext,
} from "../../media-server/objects/webrtc/srtp-sender.ts";

// The fast forwarding path's pieces, checked against werift's own SRTP
// implementation (which Chromium interoperates with) in both directions.

const PROFILES: Array<[string, SrtpProfile, number]> = [
  ["AES_CM_128_HMAC_SHA1_80", SRTP_AES128_CM_HMAC_SHA1_80, 14],
  ["AEAD_AES_128_GCM", SRTP_AEAD_AES_128_GCM, 12],
];

function packet(sequenceNumber: number, options: Partial<RtpHeader> = {}, payload = randomBytes(900)): RtpPacket {
  return new RtpPacket(
    new RtpHeader({ payloadType: 96, sequenceNumber, timestamp: 1234, ssrc: 0x11223344, ...options }),
    payload,
  );
}

/** Our context as the sender and werift's session as the receiver of the same keys, and the reverse pair. */
function sessions(profile: SrtpProfile, saltLength: number) {
  const key = randomBytes(16);
  const salt = randomBytes(saltLength);
  const other = { key: randomBytes(16), salt: randomBytes(saltLength) };
  const ours = new SrtpContext(profile, key, salt);
  const weriftReceiver = new SrtpSession({
    keys: { localMasterKey: other.key, localMasterSalt: other.salt, remoteMasterKey: key, remoteMasterSalt: salt },
    profile,
  });
  const weriftSender = new SrtpSession({
    keys: { localMasterKey: key, localMasterSalt: salt, remoteMasterKey: other.key, remoteMasterSalt: other.salt },
    profile,
  });
  return { ours, weriftReceiver, weriftSender };
}

/** Rewrites and protects like FastRtpSender does. */
function protect(ours: SrtpContext, rewriter: RtpRewriter, rollover: RolloverTracker, input: RtpPacket): Buffer {
  expect(rewriter.write(input, 100)).toBe(true);
  const roc = rollover.rolloverFor(rewriter.sequenceNumber);
  return ours.protect(
    rewriter.buffer,
    rewriter.headerLength,
    rewriter.length,
    rewriter.ssrc,
    rewriter.sequenceNumber,
    roc,
  );
}

describe.each(PROFILES)("SRTP context, %s", (_name, profile, saltLength) => {
  it("encrypts what werift decrypts, payload intact", () => {
    const { ours, weriftReceiver } = sessions(profile, saltLength);
    const rewriter = new RtpRewriter(0xcafe, 3000);
    const rollover = new RolloverTracker();
    for (let sequenceNumber = 10; sequenceNumber < 20; sequenceNumber += 1) {
      const input = packet(sequenceNumber);
      const decrypted = RtpPacket.deSerialize(weriftReceiver.decrypt(protect(ours, rewriter, rollover, input)));
      expect(decrypted.header.sequenceNumber).toBe(sequenceNumber);
      expect(decrypted.header.ssrc).toBe(0xcafe);
      expect(decrypted.payload.equals(input.payload)).toBe(true);
    }
  });

  it("decrypts what werift encrypts, and refuses a tampered packet", () => {
    const { ours, weriftSender } = sessions(profile, saltLength);
    const input = packet(500);
    const encrypted = weriftSender.encrypt(input.payload, input.header);
    const plain = ours.unprotect(encrypted, input.header.serializeSize, 0);
    expect(plain && RtpPacket.deSerialize(plain).payload.equals(input.payload)).toBe(true);
    const tampered = Buffer.from(encrypted);
    tampered[tampered.length - 20] = (tampered[tampered.length - 20] ?? 0) ^ 1;
    expect(ours.unprotect(tampered, input.header.serializeSize, 0)).toBeUndefined();
    // The wrong ROC authenticates nothing either: the ROC is part of the IV (GCM) or of the HMAC (CM).
    expect(ours.unprotect(encrypted, input.header.serializeSize, 1)).toBeUndefined();
  });

  it("keeps werift decrypting across the sequence number wrap (ROC 0 -> 1)", () => {
    const { ours, weriftReceiver } = sessions(profile, saltLength);
    const rewriter = new RtpRewriter(0xcafe, 3000);
    const rollover = new RolloverTracker();
    const sequence = [65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3];
    for (const sequenceNumber of sequence) {
      const input = packet(sequenceNumber);
      const decrypted = RtpPacket.deSerialize(weriftReceiver.decrypt(protect(ours, rewriter, rollover, input)));
      expect(decrypted.header.sequenceNumber).toBe(sequenceNumber);
      expect(decrypted.payload.equals(input.payload)).toBe(true);
    }
    // After the wrap the index's ROC is 1: werift's sender would use the same, ours matches it.
    expect(rollover.rolloverFor(4)).toBe(1);
  });
});

describe("RolloverTracker (RFC 3711 §3.3.1)", () => {
  it("gives a late packet from before the wrap the old ROC without moving the state", () => {
    const rollover = new RolloverTracker();
    expect(rollover.rolloverFor(65534)).toBe(0);
    expect(rollover.rolloverFor(0)).toBe(1);
    expect(rollover.rolloverFor(65535)).toBe(0);
    expect(rollover.rolloverFor(1)).toBe(1);
    expect(rollover.rolloverFor(20000)).toBe(1);
    expect(rollover.rolloverFor(40000)).toBe(1);
    expect(rollover.rolloverFor(65535)).toBe(1);
    expect(rollover.rolloverFor(3)).toBe(2);
  });

  it("never goes below ROC 0 for a packet older than the first", () => {
    const rollover = new RolloverTracker();
    expect(rollover.rolloverFor(5)).toBe(0);
    expect(rollover.rolloverFor(65533)).toBe(0);
    expect(rollover.rolloverFor(6)).toBe(0);
  });
});

describe("RtpRewriter", () => {
  it("keeps sequence numbers and timestamps continuous across a change of source", () => {
    const rewriter = new RtpRewriter(42, 3000);
    const out: Array<[number, number]> = [];
    const send = (input: RtpPacket) => {
      expect(rewriter.write(input, 100)).toBe(true);
      const written = RtpPacket.deSerialize(Buffer.from(rewriter.buffer.subarray(0, rewriter.length)));
      expect(written.header.ssrc).toBe(42);
      expect(written.header.payloadType).toBe(100);
      out.push([written.header.sequenceNumber, written.header.timestamp]);
    };
    send(packet(100, { ssrc: 1, timestamp: 9000 }));
    send(packet(101, { ssrc: 1, timestamp: 12000 }));
    // Another publisher (or the same one restarted): its numbers are anywhere.
    send(packet(65535, { ssrc: 2, timestamp: 4294967000 }));
    send(packet(0, { ssrc: 2, timestamp: 4294967000 + 3000 - 2 ** 32 }));
    // Back to the first source, whose numbers moved on meanwhile.
    send(packet(300, { ssrc: 1, timestamp: 500_000 }));
    expect(out).toEqual([
      [100, 9000],
      [101, 12000],
      [102, 15000],
      [103, 18000],
      [104, 21000],
    ]);
  });

  it("continues across the 16-bit and 32-bit wraps", () => {
    const rewriter = new RtpRewriter(42, 3000);
    rewriter.write(packet(65534, { ssrc: 1, timestamp: 2 ** 32 - 1000 }), 96);
    rewriter.write(packet(7, { ssrc: 2, timestamp: 5 }), 96);
    expect([rewriter.sequenceNumber, rewriter.timestamp]).toEqual([65535, 2000]);
    rewriter.write(packet(8, { ssrc: 2, timestamp: 3005 }), 96);
    expect([rewriter.sequenceNumber, rewriter.timestamp]).toEqual([0, 5000]);
  });

  it("drops the source's header extensions and writes only this peer's MID", () => {
    const rewriter = new RtpRewriter(42, 3000, { id: 9, value: "1" });
    const input = packet(7, {
      marker: true,
      csrc: [0xdeadbeef],
      extension: true,
      extensions: [
        { id: 3, payload: Buffer.from([1, 2, 3]) },
        { id: 9, payload: Buffer.from("video", "ascii") },
      ],
    });
    expect(rewriter.write(input, 100)).toBe(true);
    const written = RtpPacket.deSerialize(Buffer.from(rewriter.buffer.subarray(0, rewriter.length)));
    expect(written.header.marker).toBe(true);
    expect(written.header.csrc).toEqual([0xdeadbeef]);
    expect(written.header.extensions.map((extension) => [extension.id, extension.payload.toString()])).toEqual([
      [9, "1"],
    ]);
    expect(written.payload.equals(input.payload)).toBe(true);
    expect(rewriter.headerLength).toBe(written.header.payloadOffset);
  });

  it("writes no extension at all without a MID, and keeps padding", () => {
    const rewriter = new RtpRewriter(42, 3000);
    const input = packet(7, {
      padding: true,
      paddingSize: 4,
      extension: true,
      extensions: [{ id: 3, payload: Buffer.from([1]) }],
    });
    expect(rewriter.write(input, 100)).toBe(true);
    const raw = rewriter.buffer.subarray(0, rewriter.length);
    expect(raw[0]).toBe(0xa0); // version 2, padding, no extension, no CSRC
    const written = RtpPacket.deSerialize(Buffer.from(raw));
    expect(written.header.paddingSize).toBe(4);
    expect(written.payload.equals(input.payload)).toBe(true);
  });
});
