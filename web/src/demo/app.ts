/**
 * The Room demo: everything the original kurento-room-demo did (log in to a
 * room, publish, mute, full screen, automatic subscription, unsubscribe,
 * unpublish, chat, the hat filter, choosing the main video from the
 * thumbnails), in plain TypeScript over the client library.
 *
 * DemoApp holds the state of the running demo; each view is its own module:
 * the login form (join-form.ts), the room (room-view.ts), the thumbnails and
 * main video (tiles.ts), the chat (chat.ts) and the control bar (controls.ts).
 */
import type { KurentoRoom } from "../client/kurento-room.ts";
import type { ClientConfig } from "../client/rest.ts";
import type { Room } from "../client/room.ts";
import type { Stream } from "../client/stream.ts";
import { Chat } from "./chat.ts";
import { Controls } from "./controls.ts";
import { JoinForm } from "./join-form.ts";
import { RoomView } from "./room-view.ts";
import { Tiles } from "./tiles.ts";
import { findUi } from "./ui.ts";

export class DemoApp {
  config: ClientConfig = { loopbackRemote: false, loopbackAndLocal: false, filters: [], iceServers: [] };
  kurento: KurentoRoom | null = null;
  room: Room | null = null;
  localStream: Stream | null = null;
  /** With `loopbackAndLocal`: the untouched local camera beside the server's loopback. */
  mirror: Stream | null = null;
  /** The last join asked for ("Join again" repeats it). */
  lastJoin: { user: string; room: string } | null = null;

  readonly ui = findUi();
  readonly joinForm = new JoinForm(this);
  readonly roomView = new RoomView(this);
  readonly tiles = new Tiles(this);
  readonly chat = new Chat(this);
  readonly controls = new Controls(this);

  start(): void {
    const ui = this.ui;
    this.joinForm.bind();
    this.roomView.bind();
    this.controls.bind();
    this.chat.bind();
    void this.joinForm.loadConfig();
    void this.joinForm.loadRooms();
    (ui.name.value ? ui.roomName : ui.name).focus();
  }
}
