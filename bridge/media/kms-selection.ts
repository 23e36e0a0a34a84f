/**
 * Which KMS gets a new room's pipeline: the rules of the original demo's
 * `FixedNKmsManager` as its documentation states them ("Demo deployment"):
 * - KMSes are handed out round-robin;
 * - users whose name starts with `special` (any case; the original's SLA
 *   users) get the least-loaded KMS;
 * - load = pipelines ÷ limit (the original `kmsLimit`), capped at 1;
 * - a KMS at its limit takes no more pipelines; when none can, the room
 *   cannot be created (204, "No resources left to create new room").
 * One deliberate difference: a KMS the bridge is not connected to is skipped
 * (the original would hand it out and fail later).
 *
 * Pure: no sockets, no clock. The bridge keeps one selector per process.
 */
import { RoomCode } from "../../worker/protocol/errors.ts";

export interface KmsCandidate {
  readonly uri: string;
  readonly pipelines: number;
  readonly limit: number;
  readonly connected: boolean;
}

export type KmsChoice =
  | { readonly ok: true; readonly index: number; readonly rule: "round-robin" | "least-loaded" }
  | { readonly ok: false; readonly code: typeof RoomCode.ROOM_CANNOT_BE_CREATED | typeof RoomCode.MEDIA_GENERIC; readonly message: string };

export function isSpecialUser(user: string): boolean {
  return user.toLowerCase().startsWith("special");
}

export function loadOf(kms: KmsCandidate): number {
  return kms.limit <= 0 ? 1 : Math.min(1, kms.pipelines / kms.limit);
}

export function allowsMore(kms: KmsCandidate): boolean {
  return kms.pipelines < kms.limit;
}

export class KmsSelector {
  /** Index of the KMS the next round-robin pick starts from. */
  private cursor = 0;

  select(candidates: readonly KmsCandidate[], user: string): KmsChoice {
    const reachable = candidates.map((kms, index) => ({ kms, index })).filter(({ kms }) => kms.connected);
    if (reachable.length === 0) {
      return { ok: false, code: RoomCode.MEDIA_GENERIC, message: "No media server is reachable right now" };
    }
    if (isSpecialUser(user)) {
      let best = reachable[0]!;
      for (const entry of reachable) if (loadOf(entry.kms) < loadOf(best.kms)) best = entry;
      if (!allowsMore(best.kms)) return full();
      return { ok: true, index: best.index, rule: "least-loaded" };
    }
    const count = candidates.length;
    for (let step = 0; step < count; step++) {
      const index = (this.cursor + step) % count;
      const kms = candidates[index]!;
      if (!kms.connected || !allowsMore(kms)) continue;
      this.cursor = (index + 1) % count;
      return { ok: true, index, rule: "round-robin" };
    }
    return full();
  }
}

function full(): KmsChoice {
  return { ok: false, code: RoomCode.ROOM_CANNOT_BE_CREATED, message: "No resources left to create new room" };
}
