/**
 * Who is in the room and what they publish: the local participant and its
 * streams, the remote participants (by name) and their announced streams.
 * Raises the roster's events (`participant-joined`, `stream-removed`…);
 * the Room decides what to do with new streams (subscribe automatically).
 */
import type { PeerDescriptor } from "../../../protocol/room.ts";
import { Participant } from "./participant.ts";
import type { RoomConnectedEvent, RoomEmit } from "./room-types.ts";
import type { Stream } from "./stream.ts";

/** Makes the Stream object for a remote participant's announced stream. */
export type RemoteStreamFactory = (participant: Participant, id: string) => Stream;

export class Roster {
  readonly local: Participant;
  readonly #user: string;
  readonly #emit: RoomEmit;
  readonly #makeRemote: RemoteStreamFactory;
  /** Remote participants by name. */
  readonly #remote = new Map<string, Participant>();
  /** Every local stream made for this room (published or not). */
  readonly #localStreams = new Set<Stream>();

  constructor(user: string, emit: RoomEmit, makeRemote: RemoteStreamFactory) {
    this.#user = user;
    this.#emit = emit;
    this.#makeRemote = makeRemote;
    this.local = new Participant(user, true);
  }

  /** Every participant, the local one first. */
  participants(): Participant[] {
    return [this.local, ...this.#remote.values()];
  }

  remoteParticipants(): Participant[] {
    return [...this.#remote.values()];
  }

  get(id: string): Participant | undefined {
    return id === this.#user ? this.local : this.#remote.get(id);
  }

  getRemote(id: string): Participant | undefined {
    return this.#remote.get(id);
  }

  /** The local published stream(s) and every remote stream. */
  streams(): Stream[] {
    return [...this.local.getStreams(), ...this.remoteStreams()];
  }

  remoteStreams(): Stream[] {
    return [...this.#remote.values()].flatMap((p) => p.getStreams());
  }

  addLocalStream(stream: Stream): void {
    this.#localStreams.add(stream);
  }

  localStreams(): Stream[] {
    return [...this.#localStreams];
  }

  /** Streams the application wants live: the local published ones and the remote ones it receives. */
  wantedStreams(): Stream[] {
    return [...this.#localStreams, ...this.remoteStreams()].filter((s) => s.wanted && !s.disposed);
  }

  /** The roster `joinRoom` answered with (no events: `room-connected` reports it). */
  adopt(peers: readonly PeerDescriptor[]): RoomConnectedEvent {
    const participants: Participant[] = [];
    const streams: Stream[] = [];
    for (const peer of peers) {
      if (peer.id === this.#user) continue;
      const participant = new Participant(peer.id, false);
      this.#remote.set(peer.id, participant);
      participants.push(participant);
      for (const descriptor of peer.streams ?? []) {
        const stream = this.#makeRemote(participant, descriptor.id);
        participant.addStream(stream);
        streams.push(stream);
      }
    }
    return { participants, streams };
  }

  /** The remote participant `id`, added (`participant-joined`) if new; undefined for the local user. */
  ensure(id: string): Participant | undefined {
    if (id === this.#user) return undefined;
    let participant = this.#remote.get(id);
    if (!participant) {
      participant = new Participant(id, false);
      this.#remote.set(id, participant);
      this.#emit("participant-joined", { participant });
    }
    return participant;
  }

  /**
   * `participant` publishes `ids` (all its streams, on a server that takes
   * several): new Stream objects for the ids not known yet; known ones not
   * listed are gone (removed). When every listed id is already known the
   * announcement is a publish again (one missed while away, or an older
   * server's): those streams are replaced, as the original did.
   */
  publish(participant: Participant, ids: readonly string[]): Stream[] {
    const listed = new Set(ids);
    for (const stream of participant.getStreams()) {
      if (!listed.has(stream.getID())) this.removeStream(participant, stream);
    }
    const republish = ids.every((id) => participant.getStream(id) !== undefined);
    const added: Stream[] = [];
    for (const id of listed) {
      const previous = participant.getStream(id);
      if (previous && !republish) continue;
      if (previous) this.removeStream(participant, previous);
      const stream = this.#makeRemote(participant, id);
      participant.addStream(stream);
      added.push(stream);
    }
    return added;
  }

  /** Drops a remote participant (`participant-left`, then its streams). */
  leave(name: string): void {
    const participant = this.#remote.get(name);
    if (!participant) return;
    this.#remote.delete(name);
    this.#emit("participant-left", { participant });
    for (const stream of participant.getStreams()) this.removeStream(participant, stream);
  }

  removeStream(participant: Participant, stream: Stream): void {
    participant.removeStream(stream);
    stream.dispose();
    this.#emit("stream-removed", { stream });
  }

  /** The stay is over: releases every stream (and the local camera), silently. */
  clear(): void {
    for (const participant of this.#remote.values()) for (const stream of participant.takeStreams()) stream.dispose();
    this.#remote.clear();
    for (const stream of this.#localStreams) stream.dispose();
    this.local.takeStreams();
  }
}
