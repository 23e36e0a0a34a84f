/**
 * Which media server (a bridge in the pool, a KMS inside a bridge) gets a new
 * room: the rules of the original demo's `FixedNKmsManager`, as its
 * documentation states them:
 * - servers are handed out round-robin;
 * - users whose name starts with `special` get the least-loaded server (the
 *   original's SLA users; case-sensitive, like Java's `String.startsWith`);
 * - load = pipelines ÷ limit, capped at 1;
 * - a server at its limit takes no more pipelines; when none can, the room
 *   cannot be created (204, "No resources left to create new room").
 * One deliberate difference: an unavailable server (a bridge not connected, a
 * KMS the bridge lost) is skipped; the original would hand it out and fail later.
 *
 * Pure: the caller keeps the round-robin cursor (in memory in the bridge, in
 * storage in the pool) and passes it in.
 */
import { RoomCode } from "./errors.ts";

export const SPECIAL_USER_PREFIX = "special";

export interface SelectionCandidate {
  readonly pipelines: number;
  readonly limit: number;
  readonly available: boolean;
}

export type Selection =
  | {
      readonly ok: true;
      readonly index: number;
      readonly rule: "round-robin" | "least-loaded";
      readonly nextCursor: number;
    }
  | {
      readonly ok: false;
      readonly code: typeof RoomCode.ROOM_CANNOT_BE_CREATED | typeof RoomCode.MEDIA_GENERIC;
      readonly message: string;
    };

export function isSpecialUser(user: string): boolean {
  return user.startsWith(SPECIAL_USER_PREFIX);
}

export function loadOf(candidate: SelectionCandidate): number {
  return candidate.limit <= 0 ? 1 : Math.min(1, candidate.pipelines / candidate.limit);
}

export function hasRoom(candidate: SelectionCandidate): boolean {
  return candidate.pipelines < candidate.limit;
}

export const NO_RESOURCES_MESSAGE = "No resources left to create new room";

/** `cursor`: index the next round-robin pick starts from (any integer; taken modulo the list length). */
export function selectMediaServer(candidates: readonly SelectionCandidate[], user: string, cursor: number): Selection {
  const count = candidates.length;
  const start = count === 0 ? 0 : ((cursor % count) + count) % count;
  let anyAvailable = false;
  let best = -1;
  for (let index = 0; index < count; index++) {
    const candidate = candidates[index] as SelectionCandidate;
    if (!candidate.available) continue;
    anyAvailable = true;
    if (best < 0 || loadOf(candidate) < loadOf(candidates[best] as SelectionCandidate)) best = index;
  }
  if (!anyAvailable)
    return { ok: false, code: RoomCode.MEDIA_GENERIC, message: "No media server is reachable right now" };
  if (isSpecialUser(user)) {
    if (!hasRoom(candidates[best] as SelectionCandidate)) return full();
    return { ok: true, index: best, rule: "least-loaded", nextCursor: start };
  }
  for (let step = 0; step < count; step++) {
    const index = (start + step) % count;
    const candidate = candidates[index] as SelectionCandidate;
    if (!candidate.available || !hasRoom(candidate)) continue;
    return { ok: true, index, rule: "round-robin", nextCursor: (index + 1) % count };
  }
  return full();
}

function full(): Selection {
  return { ok: false, code: RoomCode.ROOM_CANNOT_BE_CREATED, message: NO_RESOURCES_MESSAGE };
}
