/**
 * The login view: name and room (checked with the server's rules), the open
 * rooms, joining with or without the camera, and why joining failed.
 */
import { RoomCode } from "../../../protocol/errors.ts";
import { KurentoRoom, defaultRoomUri } from "../client/kurento-room.ts";
import { getAllRooms, getClientConfig } from "../client/rest.ts";
import type { Stream } from "../client/stream.ts";
import type { DemoApp } from "./app.ts";
import { create, show } from "./dom.ts";
import { cameraDeniedMessage, errorOf, joinErrorMessage, nameProblem } from "./messages.ts";

export class JoinForm {
  readonly #app: DemoApp;

  constructor(app: DemoApp) {
    this.#app = app;
  }

  bind(): void {
    const ui = this.#app.ui;
    const query = new URLSearchParams(location.search);
    const preset = query.get("room");
    if (preset) ui.roomName.value = preset;
    const presetUser = query.get("user");
    if (presetUser) ui.name.value = presetUser;
    ui.loginForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.join(true);
    });
    ui.joinWithoutCamera.addEventListener("click", () => void this.join(false));
    for (const input of [ui.name, ui.roomName]) {
      input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
    }
    ui.refreshRooms.addEventListener("click", () => void this.loadRooms());
  }

  async loadConfig(): Promise<void> {
    const app = this.#app;
    try {
      app.config = await getClientConfig(location.origin);
    } catch (error) {
      console.warn("demo: /getClientConfig failed, using defaults", error);
    }
    app.controls.renderHat();
  }

  async loadRooms(): Promise<void> {
    const ui = this.#app.ui;
    let rooms: string[] = [];
    try {
      rooms = await getAllRooms(location.origin);
    } catch (error) {
      console.warn("demo: /getAllRooms failed", error);
    }
    ui.rooms.replaceChildren(
      ...rooms
        .sort((a, b) => a.localeCompare(b))
        .map((room) => {
          const item = create("li");
          const button = create("button", "room-chip", room);
          button.type = "button";
          button.addEventListener("click", () => {
            ui.roomName.value = room;
            ui.roomName.removeAttribute("aria-invalid");
            (ui.name.value.trim() ? ui.joinBtn : ui.name).focus();
          });
          item.append(button);
          return item;
        }),
    );
    ui.roomList.replaceChildren(...rooms.map((room) => Object.assign(create("option"), { value: room })));
    show(ui.noRooms, rooms.length === 0);
  }

  showError(text: string, offerNoCamera = false): void {
    const ui = this.#app.ui;
    ui.loginErrorText.textContent = text;
    show(ui.joinWithoutCamera, offerNoCamera);
    show(ui.loginError, true);
  }

  setBusy(busy: boolean): void {
    const ui = this.#app.ui;
    ui.joinBtn.disabled = busy;
    ui.joinWithoutCamera.disabled = busy;
    ui.joinBtn.textContent = busy ? "Joining…" : "Join room";
  }

  async join(withCamera: boolean): Promise<void> {
    const app = this.#app;
    const ui = app.ui;
    if (app.room) return;
    show(ui.loginError, false);
    const user = ui.name.value.trim();
    const roomName = ui.roomName.value.trim();
    for (const [input, value, what] of [
      [ui.name, user, "your name"],
      [ui.roomName, roomName, "a room name"],
    ] as const) {
      const problem = nameProblem(value, what);
      if (problem) {
        input.setAttribute("aria-invalid", "true");
        input.focus();
        this.showError(problem);
        return;
      }
    }
    this.setBusy(true);
    app.lastJoin = { user, room: roomName };
    const query = new URLSearchParams(location.search);
    // `?relay=1`: every peer connection may only use TURN relay candidates (trying a TURN setup; README "ICE servers and TURN").
    const kurento = new KurentoRoom(
      defaultRoomUri(),
      query.get("relay") === "1" ? { iceTransportPolicy: "relay" } : {},
    );
    // A join token from the application's server (JOIN_TOKEN_SECRET), e.g. `npm run join-token`'s link.
    const token = query.get("token");
    if (token) kurento.setRpcParams({ token });
    const room = kurento.Room({ room: roomName, user });
    let local: Stream | null = null;
    if (withCamera) {
      local = kurento.Stream(room, { audio: true, video: true });
      if (app.config.loopbackRemote) local.subscribeToMyRemote();
      try {
        await local.init();
      } catch (error) {
        this.setBusy(false);
        void room.leave();
        this.showError(cameraDeniedMessage(error instanceof Error ? error : new Error(String(error))), true);
        return;
      }
    }
    app.kurento = kurento;
    app.room = room;
    app.localStream = local;
    app.roomView.wire(room);
    try {
      await room.connect();
    } catch (error) {
      app.room = null;
      app.kurento = null;
      app.localStream = null;
      local?.dispose();
      this.setBusy(false);
      const failure = errorOf(error);
      if (failure.code === RoomCode.EXISTING_USER_IN_ROOM) {
        ui.name.setAttribute("aria-invalid", "true");
        ui.name.focus();
      }
      this.showError(joinErrorMessage(failure, user, roomName));
      return;
    }
  }

  /** Back to the login view (whatever room view there was is reset). */
  show(): void {
    const app = this.#app;
    const ui = app.ui;
    app.roomView.reset();
    show(ui.roomView, false);
    show(ui.login, true);
    document.title = "Edge Room";
    this.setBusy(false);
    void this.loadRooms();
    (ui.name.value ? ui.joinBtn : ui.name).focus();
  }
}
