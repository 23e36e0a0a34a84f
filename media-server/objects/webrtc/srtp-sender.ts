import { type Cipher, createCipheriv, createDecipheriv, createHmac, timingSafeEqual } from "node:crypto";

/** DTLS-SRTP protection profile ids (RFC 5764, RFC 7714), as werift reports them. */
export const SRTP_AES128_CM_HMAC_SHA1_80 = 0x0001;
export const SRTP_AEAD_AES_128_GCM = 0x0007;
export type SrtpProfile = typeof SRTP_AES128_CM_HMAC_SHA1_80 | typeof SRTP_AEAD_AES_128_GCM;

const HMAC_TAG_LENGTH = 10;
const GCM_TAG_LENGTH = 16;

export function isSupportedProfile(profile: number): profile is SrtpProfile {
  return profile === SRTP_AES128_CM_HMAC_SHA1_80 || profile === SRTP_AEAD_AES_128_GCM;
}

/** Bytes an SRTP packet carries beyond its RTP packet. */
export function srtpOverhead(profile: SrtpProfile): number {
  return profile === SRTP_AEAD_AES_128_GCM ? GCM_TAG_LENGTH : HMAC_TAG_LENGTH;
}

/**
 * RFC 3711 §4.3.1 key derivation (key derivation rate 0): AES-CM keystream of
 * the master key over (master salt XOR label at byte 7) || 0x0000. The GCM
 * profile's 12-byte master salt is zero-extended to 14 bytes (RFC 7714 §11).
 */
function deriveSessionValue(masterKey: Buffer, masterSalt: Buffer, label: number, length: number): Buffer {
  const iv = Buffer.alloc(16);
  masterSalt.copy(iv, 0, 0, Math.min(14, masterSalt.length));
  iv[7] = (iv[7] ?? 0) ^ label;
  const cipher = createCipheriv("aes-128-ctr", masterKey, iv);
  return cipher.update(Buffer.alloc(length));
}

/**
 * RFC 3711 §3.3.1: the index (ROC << 16 | SEQ) of a sequence number, guessed
 * from the highest index sent or received so far. Out-of-order packets near a
 * wrap get the ROC they were sent with; only a newer packet moves the state.
 */
export class RolloverTracker {
  private highestSeq = -1;
  private roc = 0;

  /** The ROC of `sequenceNumber`; advances the state when it is the newest so far. */
  rolloverFor(sequenceNumber: number): number {
    if (this.highestSeq < 0) {
      this.highestSeq = sequenceNumber;
      return this.roc;
    }
    let guess = this.roc;
    if (this.highestSeq < 0x8000) {
      if (sequenceNumber - this.highestSeq > 0x8000) guess = this.roc - 1;
    } else if (this.highestSeq - 0x8000 > sequenceNumber) {
      guess = this.roc + 1;
    }
    if (guess < 0) return 0;
    if (guess > this.roc || (guess === this.roc && sequenceNumber > this.highestSeq)) {
      this.roc = guess >>> 0;
      this.highestSeq = sequenceNumber;
    }
    return guess >>> 0;
  }
}

/**
 * The sending half of one SRTP session (RFC 3711 / RFC 7714), for RTP only:
 * session keys derived once from the DTLS-SRTP master key, then per packet one
 * node:crypto cipher (AES-128-CTR + HMAC-SHA1-80, or AES-128-GCM). Nothing is
 * kept per SSRC here: the caller owns the ROC (RolloverTracker) of its stream.
 */
export class SrtpContext {
  readonly profile: SrtpProfile;
  private readonly sessionKey: Buffer;
  private readonly sessionSalt: Buffer;
  private readonly authKey: Buffer;
  /** Scratch buffers reused by every packet (createCipheriv copies the IV). */
  private readonly iv: Buffer;
  private readonly rocBytes = Buffer.alloc(4);

  constructor(profile: SrtpProfile, masterKey: Buffer, masterSalt: Buffer) {
    this.profile = profile;
    this.sessionKey = deriveSessionValue(masterKey, masterSalt, 0, 16);
    this.authKey = deriveSessionValue(masterKey, masterSalt, 1, 20);
    this.sessionSalt = deriveSessionValue(masterKey, masterSalt, 2, 14);
    this.iv = Buffer.alloc(profile === SRTP_AEAD_AES_128_GCM ? 12 : 16);
  }

  /**
   * Encrypts the RTP packet `plain[0, length)`, whose header is `headerLength`
   * bytes, into a new buffer (a new one each time: dgram may still hold the
   * previous one while the kernel queue is full).
   */
  protect(
    plain: Buffer,
    headerLength: number,
    length: number,
    ssrc: number,
    sequenceNumber: number,
    roc: number,
  ): Buffer {
    const payload = plain.subarray(headerLength, length);
    if (this.profile === SRTP_AEAD_AES_128_GCM) {
      const cipher = createCipheriv("aes-128-gcm", this.sessionKey, this.gcmIv(ssrc, roc, sequenceNumber));
      cipher.setAAD(plain.subarray(0, headerLength));
      const encrypted = cipher.update(payload);
      cipher.final();
      const out = Buffer.allocUnsafe(length + GCM_TAG_LENGTH);
      plain.copy(out, 0, 0, headerLength);
      encrypted.copy(out, headerLength);
      cipher.getAuthTag().copy(out, length);
      return out;
    }
    const out = Buffer.allocUnsafe(length + HMAC_TAG_LENGTH);
    plain.copy(out, 0, 0, headerLength);
    this.ctrCipher(ssrc, roc, sequenceNumber).update(payload).copy(out, headerLength);
    this.authTag(out.subarray(0, length), roc).copy(out, length, 0, HMAC_TAG_LENGTH);
    return out;
  }

  /**
   * Decrypts one SRTP packet with a known ROC, or returns undefined when it does
   * not authenticate. The server never receives with this class; it exists so
   * the tests can check both directions against werift's implementation.
   */
  unprotect(packet: Buffer, headerLength: number, roc: number): Buffer | undefined {
    const ssrc = packet.readUInt32BE(8);
    const sequenceNumber = packet.readUInt16BE(2);
    if (this.profile === SRTP_AEAD_AES_128_GCM) {
      const end = packet.length - GCM_TAG_LENGTH;
      const decipher = createDecipheriv("aes-128-gcm", this.sessionKey, this.gcmIv(ssrc, roc, sequenceNumber));
      decipher.setAAD(packet.subarray(0, headerLength));
      decipher.setAuthTag(packet.subarray(end));
      const plain = decipher.update(packet.subarray(headerLength, end));
      try {
        decipher.final();
      } catch {
        return undefined;
      }
      return Buffer.concat([packet.subarray(0, headerLength), plain]);
    }
    const end = packet.length - HMAC_TAG_LENGTH;
    const expected = this.authTag(packet.subarray(0, end), roc).subarray(0, HMAC_TAG_LENGTH);
    if (!timingSafeEqual(expected, packet.subarray(end))) return undefined;
    const plain = this.ctrCipher(ssrc, roc, sequenceNumber).update(packet.subarray(headerLength, end));
    return Buffer.concat([packet.subarray(0, headerLength), plain]);
  }

  /** RFC 3711 §4.1.1: IV = (salt << 16) XOR (SSRC << 64) XOR (index << 16). */
  private ctrCipher(ssrc: number, roc: number, sequenceNumber: number): Cipher {
    const iv = this.iv;
    this.sessionSalt.copy(iv, 0, 0, 14);
    iv[14] = 0;
    iv[15] = 0;
    iv.writeUInt32BE((iv.readUInt32BE(4) ^ ssrc) >>> 0, 4);
    iv.writeUInt32BE((iv.readUInt32BE(8) ^ roc) >>> 0, 8);
    iv.writeUInt16BE(iv.readUInt16BE(12) ^ sequenceNumber, 12);
    return createCipheriv("aes-128-ctr", this.sessionKey, iv);
  }

  /** RFC 7714 §8.1: IV = salt XOR (00 00 || SSRC || ROC || SEQ). */
  private gcmIv(ssrc: number, roc: number, sequenceNumber: number): Buffer {
    const iv = this.iv;
    this.sessionSalt.copy(iv, 0, 0, 12);
    iv.writeUInt32BE((iv.readUInt32BE(2) ^ ssrc) >>> 0, 2);
    iv.writeUInt32BE((iv.readUInt32BE(6) ^ roc) >>> 0, 6);
    iv.writeUInt16BE(iv.readUInt16BE(10) ^ sequenceNumber, 10);
    return iv;
  }

  /** RFC 3711 §4.2: HMAC-SHA1 over the authenticated portion followed by the ROC. */
  private authTag(authenticated: Buffer, roc: number): Buffer {
    this.rocBytes.writeUInt32BE(roc >>> 0, 0);
    return createHmac("sha1", this.authKey).update(authenticated).update(this.rocBytes).digest();
  }
}
