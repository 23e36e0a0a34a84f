/**
 * The room view: entering it, the room's events, publishing the camera, the
 * connection status and banners, leaving, and the notice shown when the
 * stay ended on the server's or the network's side.
 */
import { RoomCode } from "../../../protocol/errors.ts";
import type { Room, RoomConnectedEvent } from "../client/room.ts";
import type { ConnectionState } from "../client/state.ts";
import type { Stream } from "../client/stream.ts";
import type { DemoApp } from "./app.ts";
import { show } from "./dom.ts";
import { closedNotice, errorOf, type Notice } from "./messages.ts";

const MEDIA_GENERIC: number = RoomCode.MEDIA_GENERIC;

const CONNECTION_LABELS: Record<ConnectionState, [string, string]> = {
  new: ["Not connected", "status-warn"],
  connecting: ["Connecting…", "status-warn"],
  connected: ["Connected", "status-ok"],
  reconnecting: ["Reconnecting…", "status-warn"],
  leaving: ["Leaving…", "status-warn"],
  closed: ["Disconnected", "status-error"],
};

export class RoomView {
  readonly #app: DemoApp;

  constructor(app: DemoApp) {
    this.#app = app;
  }

  bind(): void {
    const app = this.#app;
    const ui = app.ui;
    ui.buttonLeaveRoom.addEventListener("click", () => void this.leave());
    ui.dismissMediaError.addEventListener("click", () => show(ui.mediaBanner, false));
    ui.noticeBack.addEventListener("click", () => {
      this.hideNotice();
      app.joinForm.show();
    });
    ui.noticeRejoin.addEventListener("click", () => {
      this.hideNotice();
      app.joinForm.show();
      if (app.lastJoin) {
        ui.name.value = app.lastJoin.user;
        ui.roomName.value = app.lastJoin.room;
        void app.joinForm.join(true);
      }
    });
    window.addEventListener("pagehide", () => void app.room?.leave());
  }

  wire(room: Room): void {
    const app = this.#app;
    const { chat, controls, tiles } = app;
    room.on("room-connected", (event) => this.entered(room, event));
    room.on("participant-joined", ({ participant }) => {
      chat.systemMessage(`${participant.getID()} joined`);
      this.renderPeople();
    });
    room.on("participant-left", ({ participant }) => {
      chat.systemMessage(`${participant.getID()} left`);
      this.renderPeople();
    });
    room.on("stream-added", ({ stream }) => tiles.add(stream));
    room.on("stream-removed", ({ stream }) => tiles.remove(stream));
    const rerendering = ["stream-subscribed", "stream-unsubscribed", "stream-recovered", "stream-unpublished"] as const;
    for (const name of rerendering) room.on(name, ({ stream }) => tiles.render(stream));
    room.on("stream-recovered", ({ stream }) => {
      // The media error that caused it is resolved for this stream.
      show(app.ui.mediaBanner, false);
      const who = stream.getParticipant().getID();
      chat.systemMessage(stream.isLocal() ? "Your camera is published again" : `Receiving ${who} again`);
      controls.render();
    });
    room.on("stream-published", ({ stream }) => this.published(stream));
    room.on("screen-share-stopped", ({ stream }) => {
      tiles.remove(stream);
      chat.systemMessage("You stopped sharing your screen");
      controls.renderScreenShare();
    });
    room.on("stream-speaking", ({ stream }) => tiles.setSpeaking(stream, true));
    room.on("stream-stopped-speaking", ({ stream }) => tiles.setSpeaking(stream, false));
    room.on("active-speaker-changed", ({ stream }) => tiles.activeSpeaker(stream));
    room.on("error-media", ({ error }) => this.showMediaError(error));
    room.on("newMessage", (message) => chat.message(message.user, message.message));
    room.on("connection-state-changed", ({ state }) => this.renderConnection(state));
    room.on("reconnecting", ({ attempt }) => {
      app.ui.reconnectText.textContent = `Connection lost. Reconnecting… (attempt ${attempt})`;
    });
    room.on("reconnected", () => chat.systemMessage("Reconnected"));
    room.on("room-closed", ({ room: name }) =>
      this.ended(closedNotice(room.closeReason ?? "room-closed", name, undefined, room.eviction)),
    );
    room.on("recording-started", () => {
      chat.systemMessage("This room is being recorded");
      controls.renderRecording();
    });
    room.on("recording-stopped", () => {
      chat.systemMessage("Recording stopped");
      controls.renderRecording();
    });
    room.on("stream-force-unpublished", ({ by }) =>
      chat.systemMessage(`${by ?? "The administrator"} stopped your video; publish again to share it`),
    );
    room.on("error-room", ({ error }) => {
      // Join failures are shown on the login form; this is a stay that ended.
      if (!app.ui.roomView.hidden && room.state === "closed") {
        this.ended(closedNotice(room.closeReason ?? "reconnect-failed", room.name, error));
      }
    });
  }

  entered(room: Room, event: RoomConnectedEvent): void {
    const app = this.#app;
    const ui = app.ui;
    app.joinForm.setBusy(false);
    show(ui.loginError, false);
    ui.roomTitle.textContent = room.name;
    ui.userTitle.textContent = room.user;
    document.title = `${room.name} · Edge Room`;
    ui.messages.replaceChildren();
    app.controls.hatOn = false;
    app.chat.resetUnread();
    show(ui.login, false);
    show(ui.roomView, true);
    this.renderConnection(room.state);
    this.renderPeople();
    app.controls.renderHat();
    const local = app.localStream;
    if (local) {
      app.tiles.add(local);
      void this.publish(local);
    }
    for (const stream of event.streams) app.tiles.add(stream);
    app.controls.render();
    ui.chatInput.focus();
  }

  published(stream: Stream): void {
    const app = this.#app;
    // Your shared screen gets its tile once it is published (add() ignores a stream it already shows).
    if (stream.kind === "screen") app.tiles.add(stream);
    app.tiles.render(stream);
    app.controls.render();
    const room = app.room;
    if (!room || !app.kurento || app.mirror || !app.config.loopbackAndLocal || !stream.displayMyRemote()) return;
    if (stream !== app.localStream) return;
    // Loopback shows the server's copy; also show the untouched local camera.
    const mirror = app.kurento.Stream(room, { id: "localStream", video: true });
    mirror.mirrorLocalStream(stream.getWrStream());
    app.mirror = mirror;
    app.tiles.add(mirror);
  }

  /** Publishes; a media-side failure (a busy or restarting media server, code 301) is tried again twice. */
  async publish(stream: Stream, retries = 2): Promise<void> {
    const app = this.#app;
    app.tiles.render(stream);
    try {
      await stream.publish();
    } catch (error) {
      const failure = errorOf(error);
      // A publish cut by a reconnection is redone by the library once the session is back.
      if (app.room?.state === "reconnecting") return app.controls.render();
      const stillIdle = (): boolean => app.room?.state === "connected" && stream.status === "idle";
      if (failure.code === MEDIA_GENERIC && retries > 0 && stillIdle()) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        if (stillIdle() && app.localStream === stream) return this.publish(stream, retries - 1);
      }
      this.showMediaError(`Could not publish your camera: ${failure.message}`);
    }
    app.tiles.render(stream);
    app.controls.render();
  }

  renderPeople(): void {
    const room = this.#app.room;
    const count = room ? room.getParticipants().length : 0;
    this.#app.ui.peopleCount.textContent = `${count} ${count === 1 ? "person" : "people"}`;
  }

  renderConnection(state: ConnectionState): void {
    const ui = this.#app.ui;
    const [text, className] = CONNECTION_LABELS[state];
    ui.status.textContent = text;
    ui.status.className = `status ${className}`;
    show(ui.reconnectBanner, state === "reconnecting");
    if (state !== "reconnecting") ui.reconnectText.textContent = "Connection lost. Reconnecting…";
    ui.chatInput.disabled = state !== "connected";
  }

  showMediaError(text: string): void {
    const ui = this.#app.ui;
    ui.mediaErrorText.textContent = text;
    show(ui.mediaBanner, true);
  }

  async leave(): Promise<void> {
    const app = this.#app;
    const kurento = app.kurento;
    app.ui.buttonLeaveRoom.disabled = true;
    await kurento?.close();
    app.ui.buttonLeaveRoom.disabled = false;
    app.joinForm.show();
  }

  /** The stay ended on the server's or the network's side: say why. */
  ended(notice: Notice): void {
    this.reset();
    const ui = this.#app.ui;
    ui.noticeTitle.textContent = notice.title;
    ui.noticeText.textContent = notice.text;
    show(ui.noticeRejoin, notice.rejoin);
    show(ui.notice, true);
    ui.noticeBack.focus();
  }

  hideNotice(): void {
    show(this.#app.ui.notice, false);
  }

  /** Forgets the room: tiles, streams (and the camera), banners. */
  reset(): void {
    const app = this.#app;
    app.tiles.clear();
    app.mirror?.dispose();
    app.mirror = null;
    app.localStream?.dispose();
    app.localStream = null;
    app.room = null;
    app.kurento = null;
    app.controls.hatOn = false;
    show(app.ui.mediaBanner, false);
    show(app.ui.reconnectBanner, false);
    show(app.ui.recordingBadge, false);
  }
}
