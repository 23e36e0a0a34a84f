/**
 * Keeps the room's entry in the RoomDirectory (`GET /getAllRooms`) in step
 * with the room: listed while anyone has a seat, gone once the last seat is
 * freed. A call that fails (the directory object restarting, an overloaded
 * isolate) is retried with backoff by the room's alarm until it succeeds, so
 * an entry is never left behind; calls run one at a time and each sends the
 * room's state at the moment it runs, so a quick join/leave cannot be reordered
 * into a stale entry.
 */
import { backoffDelay } from "../../protocol/backoff.ts";

/** Retries of a failed directory call: 1 s doubling to 1 min (with jitter). */
const RETRY = { minMs: 1000, maxMs: 60_000 } as const;

export interface DirectoryHost {
  /** Whether the room has anyone seated (it should be listed). */
  wanted(): boolean;
  /** Whether the directory is known to list the room (stored with the room, false when nothing is). */
  listed(): boolean;
  setListed(listed: boolean): void;
  /** The directory call itself. */
  call(listed: boolean): Promise<void>;
  /** The directory agrees with the room; `listed` false: an empty room may now delete its storage. */
  settled(listed: boolean): void;
  /** Asks for a wake-up (the alarm) at `at` to try again. */
  retryAt(at: number): void;
  /** Keeps the object alive until the call ends. */
  waitUntil(promise: Promise<unknown>): void;
  log(fields: Record<string, unknown>): void;
}

export class DirectorySync {
  readonly #host: DirectoryHost;
  #busy = false;
  /** The room changed while a call was in flight: check again when it ends. */
  #again = false;
  #failures = 0;
  /** A retry is due at this time (ms); earlier syncs are not held back by it. */
  #retryAt: number | null = null;

  constructor(host: DirectoryHost) {
    this.#host = host;
  }

  /** When the alarm should next retry a failed call, if one failed. */
  get retryAt(): number | null {
    return this.#retryAt;
  }

  /** Brings the directory in line with the room (after any change of the roster, and on every alarm). */
  sync(): void {
    if (this.#busy) {
      this.#again = true;
      return;
    }
    const wanted = this.#host.wanted();
    // Removal is sent even when the entry is not known to exist: an add whose answer was lost may have landed.
    if (wanted && this.#host.listed()) return this.#host.settled(true);
    this.#busy = true;
    this.#again = false;
    const call = this.#host.call(wanted).then(
      () => {
        this.#busy = false;
        this.#failures = 0;
        this.#retryAt = null;
        this.#host.setListed(wanted);
        if (this.#again || this.#host.wanted() !== wanted) return this.sync();
        this.#host.settled(wanted);
      },
      (error: unknown) => {
        this.#busy = false;
        this.#retryAt = Date.now() + backoffDelay(this.#failures, RETRY);
        this.#failures += 1;
        this.#host.log({ msg: "directory update failed; retrying", listed: wanted, error: String(error) });
        this.#host.retryAt(this.#retryAt);
      },
    );
    this.#host.waitUntil(call);
  }
}
