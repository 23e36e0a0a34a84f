/**
 * A peer in the room, local or remote: groups its streams (the server
 * supports one, `webcam`). Created by the Room; applications only read it.
 */
import type { Stream } from "./stream.ts";

export class Participant {
  readonly #id: string;
  readonly #local: boolean;
  readonly #streams = new Map<string, Stream>();

  constructor(id: string, local: boolean) {
    this.#id = id;
    this.#local = local;
  }

  /** The user name. */
  getID(): string {
    return this.#id;
  }

  get id(): string {
    return this.#id;
  }

  isLocal(): boolean {
    return this.#local;
  }

  /** The participant's streams (published ones for a remote participant). */
  getStreams(): Stream[] {
    return [...this.#streams.values()];
  }

  getStream(id = "webcam"): Stream | undefined {
    return this.#streams.get(id);
  }

  /** Whether the participant publishes (a remote one announced a stream). */
  isPublishing(): boolean {
    return this.#streams.size > 0;
  }

  addStream(stream: Stream): void {
    this.#streams.set(stream.getID(), stream);
  }

  removeStream(stream: Stream): boolean {
    if (this.#streams.get(stream.getID()) !== stream) return false;
    this.#streams.delete(stream.getID());
    return true;
  }

  /** Removes and returns every stream. */
  takeStreams(): Stream[] {
    const streams = this.getStreams();
    this.#streams.clear();
    return streams;
  }
}
