/**
 * The fast path's NACK history (media-server/objects/webrtc/fast-sender.ts;
 * docs/media-forwarding.md, "NACK") with real parts: the embedded media
 * server on 127.0.0.1 (MEDIA_FORWARDING=fast), a werift publisher sending a
 * real VP8 clip (libvpx), a werift subscriber, both negotiated through
 * kurento-client. The subscriber records every SRTP datagram it receives and
 * every packet it decrypts, by sequence number, before werift's receiver sees
 * it; it can drop chosen packets there, as if the network had lost them.
 *
 * Asserted: a generic NACK (RFC 4585 §6.2.1) brings back the packets it
 * names, with the same sequence number, timestamp and payload, in the very
 * same SRTP bytes; the packets werift's own receiver NACKs after a loss come
 * back the same way; nothing comes back for a packet older than the 256-packet
 * history or one never sent; a NACK across the sequence-number wrap, packed
 * as a browser packs it, is answered in full; malformed feedback changes
 * nothing and forwarding goes on; and the publisher is never asked for a
 * keyframe or a retransmission because of any of it.
 */
import { randomInt } from "node:crypto";
import {
  GenericNack,
  type RTCPeerConnection,
  type RTCRtpTransceiver,
  RtcpPayloadSpecificFeedback,
  RtcpTransportLayerFeedback,
  type RtpPacket,
} from "werift";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MediaServerHandle, startMediaServer } from "../../media-server/index.ts";
import { startVp8Media, vp8Frames } from "../integration/vp8-media.ts";
import { publisherPeer, subscriberPeer } from "./helpers/filter-media.ts";
import {
  connectKurento,
  type KurentoClient,
  type KurentoPipeline,
  type KurentoWebRtcEndpoint,
} from "./helpers/kurento.ts";
import { waitFor } from "./helpers/werift-peer.ts";

/** Bound of every wait: it only guards against a hang (the clip comes at ~25 packets a second here). */
const WAIT_MS = 30_000;
/** Sent packets each video stream keeps (VIDEO_HISTORY in fast-sender.ts). */
const HISTORY = 256;
/**
 * The publisher's first sequence number: the stream wraps from 65535 to 0
 * after 400 packets (~16 s), once the tests before the wrap test have had
 * the 300 packets they need. The server keeps a first source's numbers, so
 * the subscriber sees the same ones.
 */
const FIRST_SEQUENCE = 0x10000 - 400;
/** RTCP packet type of transport-layer feedback, and the FMT of a generic NACK (RFC 4585 §6.2). */
const RTPFB = 205;
const NACK_FMT = 1;
/** Payload-specific feedback FMT of a FIR (RFC 5104); werift exports no class for it. */
const FIR_FMT = 4;
/** Around here (0x8000 to 0xbfff) the stream never gets: it runs from FIRST_SEQUENCE over the wrap to ~1000. */
const NEVER_SENT = 0x9000;
/** The SSRC our hand-made feedback comes from (any; werift routes transport feedback by the media SSRC). */
const FEEDBACK_SSRC = randomInt(1, 0xffffffff);

/** One packet as the subscriber decrypted it. */
interface Arrival {
  readonly timestamp: number;
  readonly marker: boolean;
  readonly payloadType: number;
  readonly payload: Buffer;
  /** Dropped on purpose before werift's receiver saw it. */
  readonly dropped: boolean;
}

/** What the subscriber got, by sequence number, from the moment media started. */
class Recording {
  /** Decrypted packets, every arrival (a resend is a second one). */
  readonly packets = new Map<number, Arrival[]>();
  /** The SRTP datagrams as they came off the socket. */
  readonly datagrams = new Map<number, Buffer[]>();
  /** Sequence numbers in order of first arrival. */
  readonly order: number[] = [];
  /** Sequence numbers to drop the first time they arrive. */
  readonly toDrop = new Set<number>();
  /** What werift's receiver was given (each sequence number once). */
  private readonly delivered = new Set<number>();
  ssrc: number | undefined;

  /** Taps the subscriber's transceiver: raw datagrams at the ICE connection, decrypted packets before werift's receiver. */
  constructor(transceiver: RTCRtpTransceiver) {
    transceiver.dtlsTransport.iceTransport.connection.onData.subscribe((data) => {
      // RTP only (first byte 128..191, RFC 7983; RTCP's packet types 192..208 in the second byte).
      if (data.length < 12 || data[0] === undefined || data[0] < 128 || data[0] > 191) return;
      const type = data[1] ?? 0;
      if (type >= 192 && type <= 208) return;
      const sequenceNumber = data.readUInt16BE(2);
      const list = this.datagrams.get(sequenceNumber) ?? [];
      list.push(Buffer.from(data));
      this.datagrams.set(sequenceNumber, list);
    });
    const receiver = transceiver.receiver;
    const deliver = receiver.handleRtpBySsrc;
    receiver.handleRtpBySsrc = (packet, extensions) => {
      const sequenceNumber = packet.header.sequenceNumber;
      const list = this.packets.get(sequenceNumber) ?? [];
      const dropped = list.length === 0 && this.toDrop.has(sequenceNumber);
      list.push(arrival(packet, dropped));
      this.packets.set(sequenceNumber, list);
      if (list.length === 1) this.order.push(sequenceNumber);
      this.ssrc = packet.header.ssrc;
      // A dropped packet never reaches werift's receiver (which then sees a gap and NACKs it); a resend of a
      // packet it already has is kept from it too, so its own NACK logic only ever sees a clean stream.
      if (dropped || this.delivered.has(sequenceNumber)) return;
      this.delivered.add(sequenceNumber);
      deliver(packet, extensions);
    };
  }

  /** The newest sequence number received. */
  newest(): number {
    const last = this.order[this.order.length - 1];
    if (last === undefined) throw new Error("nothing received yet");
    return last;
  }

  arrivals(sequenceNumber: number): number {
    return this.packets.get(sequenceNumber)?.length ?? 0;
  }

  /** Arrivals so far of each of `sequenceNumbers`. */
  counts(sequenceNumbers: readonly number[]): Map<number, number> {
    return new Map(sequenceNumbers.map((sequenceNumber) => [sequenceNumber, this.arrivals(sequenceNumber)]));
  }

  /** Sequence numbers that arrived more than once. */
  resent(): Set<number> {
    return new Set([...this.packets].filter(([, list]) => list.length > 1).map(([sequenceNumber]) => sequenceNumber));
  }

  /** Every arrival of `sequenceNumber` carries what the first one did, and every datagram is the first one's bytes. */
  expectIdenticalArrivals(sequenceNumber: number): void {
    const [first, ...again] = this.packets.get(sequenceNumber) ?? [];
    expect(first, `packet ${sequenceNumber}`).toBeDefined();
    expect(again.length, `resends of packet ${sequenceNumber}`).toBeGreaterThan(0);
    for (const other of again) {
      expect(other.timestamp).toBe(first?.timestamp);
      expect(other.marker).toBe(first?.marker);
      expect(other.payloadType).toBe(first?.payloadType);
      expect(other.payload.equals(first?.payload ?? Buffer.alloc(0)), `payload of packet ${sequenceNumber}`).toBe(true);
    }
    const [firstDatagram, ...otherDatagrams] = this.datagrams.get(sequenceNumber) ?? [];
    expect(otherDatagrams.length, `SRTP datagrams of packet ${sequenceNumber}`).toBe(again.length);
    for (const datagram of otherDatagrams) {
      expect(datagram.equals(firstDatagram ?? Buffer.alloc(0)), `SRTP bytes of packet ${sequenceNumber}`).toBe(true);
    }
  }
}

function arrival(packet: RtpPacket, dropped: boolean): Arrival {
  const { timestamp, marker, payloadType } = packet.header;
  return { timestamp, marker, payloadType, payload: Buffer.from(packet.payload), dropped };
}

const seq = (value: number): number => value & 0xffff;

/** A generic NACK as it goes on the wire: header, sender and media SSRC, then one (PID, BLP) item per lost run. */
function nackBytes(mediaSsrc: number, items: ReadonlyArray<readonly [pid: number, blp: number]>): Buffer {
  const out = Buffer.alloc(12 + 4 * items.length);
  out[0] = 0x80 | NACK_FMT;
  out[1] = RTPFB;
  out.writeUInt16BE(2 + items.length, 2);
  out.writeUInt32BE(FEEDBACK_SSRC, 4);
  out.writeUInt32BE(mediaSsrc, 8);
  items.forEach(([pid, blp], index) => {
    out.writeUInt16BE(pid, 12 + 4 * index);
    out.writeUInt16BE(blp, 14 + 4 * index);
  });
  return out;
}

/** What the publisher's werift sender was asked for by the server. */
interface PublisherAsked {
  plis: number;
  firs: number;
  nacks: number;
}

let server: MediaServerHandle;
let client: KurentoClient;
let pipeline: KurentoPipeline;
let subscriberEndpoint: KurentoWebRtcEndpoint;
const peers: RTCPeerConnection[] = [];
let media: { stop(): void } | undefined;
let recording: Recording;
let subscriberVideo: RTCRtpTransceiver;
const asked: PublisherAsked = { plis: 0, firs: 0, nacks: 0 };
let askedAtStart: PublisherAsked;
const lostReportedBySubscriber: number[] = [];
const serverLog: string[] = [];

beforeAll(async () => {
  server = await startMediaServer({
    port: 0,
    webrtc: { loopbackOnly: true, mediaForwarding: "fast" },
    sessionGraceMs: 500,
    log: (message) => serverLog.push(message),
  });
  client = await connectKurento(server.url);
  pipeline = await client.create("MediaPipeline");
  const publisherEndpoint = await pipeline.create("WebRtcEndpoint");
  subscriberEndpoint = await pipeline.create("WebRtcEndpoint");
  await publisherEndpoint.connect(subscriberEndpoint);

  const publisher = await publisherPeer(publisherEndpoint);
  peers.push(publisher.peer);
  const subscriber = await subscriberPeer(subscriberEndpoint);
  peers.push(subscriber.peer);
  await waitFor(
    async () =>
      publisher.peer.connectionState === "connected" &&
      subscriber.peer.connectionState === "connected" &&
      (await publisherEndpoint.getMediaState()) === "CONNECTED" &&
      (await subscriberEndpoint.getMediaState()) === "CONNECTED",
    WAIT_MS,
    "the publisher and the subscriber to connect, on both sides",
  );

  const sender = publisher.video.sender;
  sender.onPictureLossIndication.subscribe(() => {
    asked.plis += 1;
  });
  sender.onGenericNack.subscribe(() => {
    asked.nacks += 1;
  });
  sender.onRtcp.subscribe((packet) => {
    if (packet instanceof RtcpPayloadSpecificFeedback && packet.feedback.count === FIR_FMT) asked.firs += 1;
  });

  const transceiver = subscriber.peer.getTransceivers().find((candidate) => candidate.kind === "video");
  if (!transceiver) throw new Error("the subscriber has no video transceiver");
  subscriberVideo = transceiver;
  recording = new Recording(transceiver);
  transceiver.receiver.onPacketLost.subscribe((nack) => lostReportedBySubscriber.push(...nack.lost));

  // Both peers are up before the first packet, so the subscriber records the stream from its start. The
  // publisher's numbers start near the wrap (startVp8Media numbers from 1001): the same clip, shifted.
  let shift: number | undefined;
  const shifted = {
    sender: {
      sendRtp: (packet: RtpPacket) => {
        shift ??= seq(FIRST_SEQUENCE - packet.header.sequenceNumber);
        packet.header.sequenceNumber = seq(packet.header.sequenceNumber + shift);
        return sender.sendRtp(packet);
      },
    },
  };
  media = startVp8Media(shifted as unknown as RTCRtpTransceiver, vp8Frames());
  await waitFor(() => recording.order.length >= 20, WAIT_MS, "20 packets at the subscriber");
  // The server kept the publisher's numbers (a first source's), which the wrap test counts on.
  expect(seq((recording.order[0] ?? 0) - FIRST_SEQUENCE)).toBeLessThan(20);
  // Any keyframe request from setting up (the sink's connect, the subscriber's DTLS) was made long before this.
  askedAtStart = { ...asked };
});

afterAll(async () => {
  media?.stop();
  await Promise.all(peers.map((peer) => peer.close()));
  await pipeline?.release().catch(() => undefined);
  client?.close();
  await server?.close();
});

/** Sends werift's own GenericNack from the subscriber (SRTCP over its ICE pair), as its receiver would. */
async function sendNack(lost: number[]): Promise<void> {
  const mediaSourceSsrc = recording.ssrc;
  if (mediaSourceSsrc === undefined) throw new Error("no media SSRC yet");
  const feedback = new GenericNack({ senderSsrc: FEEDBACK_SSRC, mediaSourceSsrc, lost });
  await subscriberVideo.dtlsTransport.sendRtcp([new RtcpTransportLayerFeedback({ feedback })]);
}

/** Sends `rtcp` as it is, encrypted as SRTCP with the subscriber's keys, or as plain bytes when `encrypt` is false. */
async function sendRawRtcp(rtcp: Buffer, encrypt = true): Promise<void> {
  const dtls = subscriberVideo.dtlsTransport;
  await dtls.iceTransport.connection.send(encrypt ? dtls.srtcp.encrypt(rtcp) : rtcp);
}

function mediaSsrc(): number {
  if (recording.ssrc === undefined) throw new Error("no media SSRC yet");
  return recording.ssrc;
}

function expectPublisherNotAsked(since: PublisherAsked): void {
  expect(asked, "keyframe requests and NACKs the publisher got").toEqual(since);
}

/** Waits until each of `targets` has arrived once more than in `before` (from `recording.counts`). */
async function waitForResends(targets: readonly number[], before: ReadonlyMap<number, number>): Promise<void> {
  await waitFor(
    () => targets.every((target) => recording.arrivals(target) > (before.get(target) ?? 0)),
    WAIT_MS,
    `the resends of ${targets.join(", ")}`,
  );
}

describe("NACK answered from the fast path's history", () => {
  it("resends packets the subscriber already has: same number, timestamp and payload, same SRTP bytes", async () => {
    const before = { ...asked };
    await waitFor(() => recording.order.length >= 30, WAIT_MS, "30 packets at the subscriber");
    const resentBefore = recording.resent();
    const newest = recording.newest();
    // A run that packs into one (PID, BLP) item with gaps in its bitmask, and two on their own.
    const targets = [seq(newest - 20), seq(newest - 19), seq(newest - 17), seq(newest - 12), seq(newest - 2)];
    const counts = recording.counts(targets);
    for (const target of targets) expect(counts.get(target), `packet ${target} before the NACK`).toBe(1);

    await sendNack(targets);
    await waitForResends(targets, counts);

    for (const target of targets) recording.expectIdenticalArrivals(target);
    // Only what was asked for came again (the last target was sent last, so anything else would be here by now).
    const resentNow = [...recording.resent()].filter((sequenceNumber) => !resentBefore.has(sequenceNumber));
    expect(resentNow.sort((a, b) => a - b)).toEqual([...targets].sort((a, b) => a - b));
    expectPublisherNotAsked(before);
  });

  it("recovers packets dropped before werift's receiver saw them: its own NACK brings back the originals", async () => {
    const before = { ...asked };
    // werift's receiver loses track of its losses across the wrap: drop packets well clear of it.
    await waitFor(() => recording.newest() + 12 <= 0xffff, WAIT_MS, "a stretch of the stream clear of the wrap");
    const newest = recording.newest();
    const targets = [newest + 4, newest + 5, newest + 8];
    for (const target of targets) recording.toDrop.add(target);

    await waitFor(
      () => targets.every((target) => recording.packets.get(target)?.some((arrival) => !arrival.dropped)),
      WAIT_MS,
      `the dropped packets ${targets.join(", ")} to come back`,
    );

    for (const target of targets) {
      expect(recording.packets.get(target)?.[0]?.dropped, `the first arrival of ${target} was dropped`).toBe(true);
      recording.expectIdenticalArrivals(target);
    }
    // What came back answered werift's receiver, which NACKed exactly these (a GenericNack to the server's sender).
    for (const target of targets) expect(lostReportedBySubscriber).toContain(target);
    expectPublisherNotAsked(before);
  });

  it("sends nothing for packets older than the history or never sent, and goes on answering", async () => {
    const before = { ...asked };
    const first = recording.order[0] ?? FIRST_SEQUENCE;
    await waitFor(
      () => seq(recording.newest() - first) >= HISTORY + 44,
      WAIT_MS,
      `${HISTORY + 44} packets after the first`,
    );
    const newest = recording.newest();
    // The server has sent at least up to `newest`: anything 256 or more behind it has left the history.
    const stale = [first, seq(first + 1), seq(first + 2), seq(newest - HISTORY - 1), seq(newest - HISTORY)];
    const neverSent = seq(first - 1000);
    const inHistory = [seq(newest - 200), seq(newest - 1)];
    const staleCounts = recording.counts(stale);
    expect([...staleCounts.values()].every((count) => count >= 1)).toBe(true);
    expect(recording.arrivals(neverSent)).toBe(0);
    const inHistoryCounts = recording.counts(inHistory);

    // The stale numbers first, the ones still kept last: the server answers a NACK's numbers in order, on one
    // socket, so once those are back anything sent for the others would be back too.
    await sendNack([...stale, inHistory[0] ?? 0]);
    await sendRawRtcp(
      nackBytes(mediaSsrc(), [
        [neverSent, 0xffff],
        [seq(first - 1), 0],
      ]),
    );
    await sendNack([inHistory[1] ?? 0]);
    await waitForResends(inHistory, inHistoryCounts);

    expect(recording.counts(stale)).toEqual(staleCounts);
    for (let offset = -1; offset <= 16; offset++) {
      expect(recording.arrivals(seq(neverSent + offset)), `packet ${seq(neverSent + offset)}`).toBe(0);
      expect(recording.datagrams.has(seq(neverSent + offset))).toBe(false);
    }
    for (const target of inHistory) recording.expectIdenticalArrivals(target);
    expectPublisherNotAsked(before);
  });

  it("answers a NACK across the sequence-number wrap, packed as a browser packs it (PID 65530, BLP to packet 10)", async () => {
    const before = { ...asked };
    await waitFor(
      () => recording.packets.has(0xffff) && recording.packets.has(0) && recording.packets.has(12),
      WAIT_MS,
      "the stream to wrap from 65535 to 0 and go on to 12",
    );
    const wanted = [65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const sentinel = recording.newest();
    const counts = recording.counts([...wanted, sentinel]);
    expect(wanted.every((target) => (counts.get(target) ?? 0) >= 1)).toBe(true);

    // PID 65530 and BLP 0xffff ask for 65531 ... 65546, which is 65531 ... 65535, 0 ... 10 (RFC 4585 numbers
    // wrap like the sequence numbers; libwebrtc packs a loss across the wrap this way). The sentinel comes last.
    await sendRawRtcp(
      nackBytes(mediaSsrc(), [
        [65530, 0xffff],
        [sentinel, 0],
      ]),
    );
    await waitForResends([sentinel], counts);

    expect(
      wanted.map((target) => recording.arrivals(target) - (counts.get(target) ?? 0)),
      `resends of ${wanted.join(", ")}`,
    ).toEqual(wanted.map(() => 1));
    for (const target of wanted) recording.expectIdenticalArrivals(target);
    expectPublisherNotAsked(before);
  });

  it("survives malformed and garbage feedback: forwarding goes on and NACKs are still answered", async () => {
    const before = { ...asked };
    const ssrc = mediaSsrc();
    const header = (fmt: number, type: number, lengthWords: number): Buffer => {
      const out = Buffer.alloc(4);
      out[0] = 0x80 | fmt;
      out[1] = type;
      out.writeUInt16BE(lengthWords, 2);
      return out;
    };
    const ssrcs = Buffer.alloc(8);
    ssrcs.writeUInt32BE(FEEDBACK_SSRC, 0);
    ssrcs.writeUInt32BE(ssrc, 4);
    const far = Buffer.alloc(2);
    far.writeUInt16BE(NEVER_SENT, 0);
    // Junk whose every 16-bit word is a number the stream never reaches, however a parser reads it.
    const junk = Buffer.from(Array.from({ length: 52 }, (_, i) => (i % 2 === 0 ? 0x80 | (i & 0x3f) : i * 29) & 0xff));
    // Whatever of these a lenient parser still takes for a NACK names only packets never sent, except where noted.
    const garbage: Array<{ what: string; bytes: Buffer; encrypt: boolean }> = [
      // A NACK whose FCI stops after the PID.
      {
        what: "truncated FCI",
        bytes: Buffer.concat([header(NACK_FMT, RTPFB, 3), ssrcs, far]),
        encrypt: true,
      },
      // A NACK with no media SSRC at all.
      {
        what: "no media SSRC",
        bytes: Buffer.concat([header(NACK_FMT, RTPFB, 1), ssrcs.subarray(0, 4)]),
        encrypt: true,
      },
      // A NACK whose length claims far more than there is.
      {
        what: "length beyond the packet",
        bytes: Buffer.concat([header(NACK_FMT, RTPFB, 0xffff), ssrcs, far, Buffer.from([0xff, 0xff])]),
        encrypt: true,
      },
      // Padding bit set, with a padding count larger than the packet.
      {
        what: "padding larger than the packet",
        bytes: Buffer.concat([Buffer.from([0xa0 | NACK_FMT, RTPFB, 0, 3]), ssrcs, far, Buffer.from([0x00, 0xff])]),
        encrypt: true,
      },
      // Transport feedback of an FMT nobody defined, full of junk.
      {
        what: "unknown RTPFB format",
        bytes: Buffer.concat([header(30, RTPFB, 6), ssrcs, junk.subarray(0, 16)]),
        encrypt: true,
      },
      // A NACK for packets this stream does have, but for a media SSRC nobody sends: not this stream's to answer.
      {
        what: "unknown media SSRC",
        bytes: nackBytes((ssrc ^ 0x5a5a5a5a) >>> 0, [[seq(recording.newest() - 20), 0xffff]]),
        encrypt: true,
      },
      // Junk that only looks like a NACK, encrypted.
      {
        what: "junk as SRTCP",
        bytes: Buffer.concat([header(NACK_FMT, RTPFB, 15), ssrcs, junk]),
        encrypt: true,
      },
      // Plain RTCP where SRTCP belongs (fails SRTCP authentication), asking for packets the stream has.
      {
        what: "unencrypted NACK",
        bytes: nackBytes(ssrc, [[seq(recording.newest() - 3), 0xffff]]),
        encrypt: false,
      },
      {
        what: "unencrypted junk",
        bytes: Buffer.concat([Buffer.from([0x81, RTPFB]), Buffer.alloc(60, 0xff)]),
        encrypt: false,
      },
    ];
    const receivedBefore = recording.order.length;
    const resentBefore = recording.resent();
    for (const { what, bytes, encrypt } of garbage) {
      await sendRawRtcp(bytes, encrypt).catch((error: unknown) => {
        throw new Error(`sending the ${what} case failed: ${String(error)}`);
      });
    }

    // Forwarding goes on (about a second of video) ...
    await waitFor(() => recording.order.length >= receivedBefore + 40, WAIT_MS, "40 more packets after the garbage");
    // ... and a well-formed NACK is still answered.
    const target = seq(recording.newest() - 5);
    const counts = recording.counts([target]);
    await sendNack([target]);
    await waitForResends([target], counts);
    recording.expectIdenticalArrivals(target);
    // None of the garbage made the server resend anything (the unencrypted NACK never authenticated).
    const resentNow = [...recording.resent()].filter((sequenceNumber) => !resentBefore.has(sequenceNumber));
    expect(resentNow).toEqual([target]);
    expect(await subscriberEndpoint.getMediaState()).toBe("CONNECTED");
    expect(server.stats()).toMatchObject({ objects: 3, pipelines: 1 });
    expectPublisherNotAsked(before);
    // Over the whole file: the publisher was never asked for a keyframe or a retransmission by any of it.
    expect(asked).toEqual(askedAtStart);
    expect(serverLog.filter((line) => /error|exception/i.test(line))).toEqual([]);
  });
});
