/**
 * The Room demo: everything the original kurento-room-demo did (log in to a
 * room, publish, mute, full screen, automatic subscription, unsubscribe,
 * unpublish, chat, the hat filter, choosing the main video from the
 * thumbnails), in plain TypeScript over the client library.
 */
import { RoomCode } from "../../../protocol/errors.ts";
import { RpcRequestError } from "../../../protocol/rpc-peer.ts";
import { KurentoRoom, defaultRoomUri } from "../client/kurento-room.ts";
import { getAllRooms, getClientConfig, type ClientConfig } from "../client/rest.ts";
import type { Room, RoomConnectedEvent } from "../client/room.ts";
import type { ConnectionState } from "../client/state.ts";
import type { Stream } from "../client/stream.ts";
import { byId, create, show } from "./dom.ts";
import { thumbnailWidthPercent } from "./layout.ts";
import { cameraDeniedMessage, closedNotice, joinErrorMessage, nameProblem, type Notice } from "./messages.ts";

interface Tile {
  readonly stream: Stream;
  readonly root: HTMLDivElement;
  readonly state: HTMLSpanElement;
  readonly video: HTMLVideoElement;
  readonly action: HTMLButtonElement | null;
}

const HAT_FILTER = "hat";
const MEDIA_GENERIC: number = RoomCode.MEDIA_GENERIC;

function errorOf(error: unknown): RpcRequestError {
  if (error instanceof RpcRequestError) return error;
  return new RpcRequestError({ code: 999, message: error instanceof Error ? error.message : String(error) });
}

export class DemoApp {
  config: ClientConfig = { loopbackRemote: false, loopbackAndLocal: false, filters: [] };
  kurento: KurentoRoom | null = null;
  room: Room | null = null;
  localStream: Stream | null = null;
  mirror: Stream | null = null;
  readonly tiles = new Map<string, Tile>();
  main: { stream: Stream; video: HTMLVideoElement } | null = null;
  hatOn = false;
  unread = 0;
  lastJoin: { user: string; room: string } | null = null;

  readonly ui = {
    login: byId("login", HTMLElement),
    loginForm: byId("loginForm", HTMLFormElement),
    name: byId("name", HTMLInputElement),
    roomName: byId("roomName", HTMLInputElement),
    roomList: byId("roomList", HTMLDataListElement),
    rooms: byId("rooms", HTMLUListElement),
    noRooms: byId("noRooms", HTMLParagraphElement),
    refreshRooms: byId("refreshRooms", HTMLButtonElement),
    loginError: byId("loginError", HTMLDivElement),
    loginErrorText: byId("loginErrorText", HTMLParagraphElement),
    joinWithoutCamera: byId("joinWithoutCamera", HTMLButtonElement),
    joinBtn: byId("joinBtn", HTMLButtonElement),
    roomView: byId("room", HTMLDivElement),
    roomTitle: byId("roomTitle", HTMLElement),
    userTitle: byId("userTitle", HTMLSpanElement),
    peopleCount: byId("peopleCount", HTMLSpanElement),
    status: byId("connectionStatus", HTMLSpanElement),
    reconnectBanner: byId("reconnectBanner", HTMLDivElement),
    reconnectText: byId("reconnectText", HTMLSpanElement),
    mediaBanner: byId("mediaBanner", HTMLDivElement),
    mediaErrorText: byId("mediaErrorText", HTMLSpanElement),
    dismissMediaError: byId("dismissMediaError", HTMLButtonElement),
    mainVideo: byId("main-video", HTMLDivElement),
    mainName: byId("mainName", HTMLSpanElement),
    mainEmpty: byId("mainEmpty", HTMLParagraphElement),
    participants: byId("participants", HTMLDivElement),
    chat: byId("chat", HTMLElement),
    messages: byId("messages", HTMLUListElement),
    chatForm: byId("chatForm", HTMLFormElement),
    chatInput: byId("chatInput", HTMLInputElement),
    buttonVolume: byId("buttonVolume", HTMLButtonElement),
    buttonVideocam: byId("buttonVideocam", HTMLButtonElement),
    buttonPublish: byId("buttonPublish", HTMLButtonElement),
    buttonHat: byId("buttonHat", HTMLButtonElement),
    hatReason: byId("hatReason", HTMLSpanElement),
    buttonFullscreen: byId("buttonFullscreen", HTMLButtonElement),
    buttonChat: byId("buttonChat", HTMLButtonElement),
    unreadBadge: byId("unread", HTMLSpanElement),
    buttonLeaveRoom: byId("buttonLeaveRoom", HTMLButtonElement),
    notice: byId("notice", HTMLDivElement),
    noticeTitle: byId("noticeTitle", HTMLHeadingElement),
    noticeText: byId("noticeText", HTMLParagraphElement),
    noticeRejoin: byId("noticeRejoin", HTMLButtonElement),
    noticeBack: byId("noticeBack", HTMLButtonElement),
  };

  start(): void {
    const ui = this.ui;
    const preset = new URLSearchParams(location.search).get("room");
    if (preset) ui.roomName.value = preset;
    ui.loginForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.join(true);
    });
    ui.joinWithoutCamera.addEventListener("click", () => void this.join(false));
    for (const input of [ui.name, ui.roomName]) input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
    ui.refreshRooms.addEventListener("click", () => void this.loadRooms());
    ui.buttonLeaveRoom.addEventListener("click", () => void this.leave());
    ui.buttonVolume.addEventListener("click", () => this.toggleAudio());
    ui.buttonVideocam.addEventListener("click", () => this.toggleVideo());
    ui.buttonPublish.addEventListener("click", () => void this.togglePublish());
    ui.buttonHat.addEventListener("click", () => void this.toggleHat());
    ui.buttonFullscreen.addEventListener("click", () => void this.toggleFullscreen());
    document.addEventListener("fullscreenchange", () => {
      ui.buttonFullscreen.textContent = document.fullscreenElement ? "Exit full screen" : "Full screen";
    });
    ui.buttonChat.addEventListener("click", () => this.toggleChat());
    ui.chatForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.sendChat();
    });
    ui.dismissMediaError.addEventListener("click", () => show(ui.mediaBanner, false));
    ui.noticeBack.addEventListener("click", () => {
      this.hideNotice();
      this.showLogin();
    });
    ui.noticeRejoin.addEventListener("click", () => {
      this.hideNotice();
      this.showLogin();
      if (this.lastJoin) {
        ui.name.value = this.lastJoin.user;
        ui.roomName.value = this.lastJoin.room;
        void this.join(true);
      }
    });
    window.addEventListener("pagehide", () => void this.room?.leave());
    void this.loadConfig();
    void this.loadRooms();
    (ui.name.value ? ui.roomName : ui.name).focus();
  }

  // ── login ─────────────────────────────────────────────────────────────────
  async loadConfig(): Promise<void> {
    try {
      this.config = await getClientConfig(location.origin);
    } catch (error) {
      console.warn("demo: /getClientConfig failed, using defaults", error);
    }
    this.renderHat();
  }

  async loadRooms(): Promise<void> {
    const ui = this.ui;
    let rooms: string[] = [];
    try {
      rooms = await getAllRooms(location.origin);
    } catch (error) {
      console.warn("demo: /getAllRooms failed", error);
    }
    ui.rooms.replaceChildren(
      ...rooms.sort((a, b) => a.localeCompare(b)).map((room) => {
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

  showLoginError(text: string, offerNoCamera = false): void {
    this.ui.loginErrorText.textContent = text;
    show(this.ui.joinWithoutCamera, offerNoCamera);
    show(this.ui.loginError, true);
  }

  setBusy(busy: boolean): void {
    const ui = this.ui;
    ui.joinBtn.disabled = busy;
    ui.joinWithoutCamera.disabled = busy;
    ui.joinBtn.textContent = busy ? "Joining…" : "Join room";
  }

  async join(withCamera: boolean): Promise<void> {
    const ui = this.ui;
    if (this.room) return;
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
        this.showLoginError(problem);
        return;
      }
    }
    this.setBusy(true);
    this.lastJoin = { user, room: roomName };
    const kurento = new KurentoRoom(defaultRoomUri());
    const room = kurento.Room({ room: roomName, user });
    let local: Stream | null = null;
    if (withCamera) {
      local = kurento.Stream(room, { audio: true, video: true });
      if (this.config.loopbackRemote) local.subscribeToMyRemote();
      try {
        await local.init();
      } catch (error) {
        this.setBusy(false);
        void room.leave();
        this.showLoginError(cameraDeniedMessage(error instanceof Error ? error : new Error(String(error))), true);
        return;
      }
    }
    this.kurento = kurento;
    this.room = room;
    this.localStream = local;
    this.wire(room);
    try {
      await room.connect();
    } catch (error) {
      this.room = null;
      this.kurento = null;
      this.localStream = null;
      local?.dispose();
      this.setBusy(false);
      const failure = errorOf(error);
      if (failure.code === 104) {
        ui.name.setAttribute("aria-invalid", "true");
        ui.name.focus();
      }
      this.showLoginError(joinErrorMessage(failure, user, roomName));
      return;
    }
  }

  // ── room events ───────────────────────────────────────────────────────────
  wire(room: Room): void {
    room.on("room-connected", (event) => this.entered(room, event));
    room.on("participant-joined", ({ participant }) => {
      this.systemMessage(`${participant.getID()} joined`);
      this.renderPeople();
    });
    room.on("participant-left", ({ participant }) => {
      this.systemMessage(`${participant.getID()} left`);
      this.renderPeople();
    });
    room.on("stream-added", ({ stream }) => this.addTile(stream));
    room.on("stream-removed", ({ stream }) => this.removeTile(stream));
    for (const name of ["stream-subscribed", "stream-unsubscribed", "stream-recovered", "stream-unpublished"] as const) {
      room.on(name, ({ stream }) => this.renderTile(stream));
    }
    room.on("stream-recovered", ({ stream }) => {
      // The media error that caused it is resolved for this stream.
      show(this.ui.mediaBanner, false);
      this.systemMessage(stream.isLocal() ? "Your camera is published again" : `Receiving ${stream.getParticipant().getID()} again`);
      this.renderControls();
    });
    room.on("stream-published", ({ stream }) => this.published(stream));
    room.on("error-media", ({ error }) => this.showMediaError(error));
    room.on("newMessage", (message) => this.chatMessage(message.user, message.message));
    room.on("connection-state-changed", ({ state }) => this.renderConnection(state));
    room.on("reconnecting", ({ attempt }) => {
      this.ui.reconnectText.textContent = `Connection lost. Reconnecting… (attempt ${attempt})`;
    });
    room.on("reconnected", () => this.systemMessage("Reconnected"));
    room.on("room-closed", ({ room: name }) => this.ended(closedNotice(room.closeReason ?? "room-closed", name)));
    room.on("error-room", ({ error }) => {
      // Join failures are shown on the login form; this is a stay that ended.
      if (!this.ui.roomView.hidden && room.state === "closed") {
        this.ended(closedNotice(room.closeReason ?? "reconnect-failed", room.name, error));
      }
    });
  }

  entered(room: Room, event: RoomConnectedEvent): void {
    const ui = this.ui;
    this.setBusy(false);
    show(ui.loginError, false);
    ui.roomTitle.textContent = room.name;
    ui.userTitle.textContent = room.user;
    document.title = `${room.name} · Edge Room`;
    ui.messages.replaceChildren();
    this.hatOn = false;
    this.unread = 0;
    this.renderUnread();
    show(ui.login, false);
    show(ui.roomView, true);
    this.renderConnection(room.state);
    this.renderPeople();
    this.renderHat();
    const local = this.localStream;
    if (local) {
      this.addTile(local);
      void this.publish(local);
    }
    for (const stream of event.streams) this.addTile(stream);
    this.renderControls();
    ui.chatInput.focus();
  }

  published(stream: Stream): void {
    this.renderTile(stream);
    this.renderControls();
    const room = this.room;
    if (!room || !this.kurento || this.mirror || !this.config.loopbackAndLocal || !stream.displayMyRemote()) return;
    // Loopback shows the server's copy; also show the untouched local camera.
    const mirror = this.kurento.Stream(room, { id: "localStream", video: true });
    mirror.mirrorLocalStream(stream.getWrStream());
    this.mirror = mirror;
    this.addTile(mirror);
  }

  /** Publishes; a media-side failure (a busy or restarting media server, code 301) is tried again twice. */
  async publish(stream: Stream, retries = 2): Promise<void> {
    this.renderTile(stream);
    try {
      await stream.publish();
    } catch (error) {
      const failure = errorOf(error);
      // A publish cut by a reconnection is redone by the library once the session is back.
      if (this.room?.state === "reconnecting") return this.renderControls();
      if (failure.code === MEDIA_GENERIC && retries > 0 && this.room?.state === "connected" && stream.status === "idle") {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        if (this.room?.state === "connected" && stream.status === "idle" && this.localStream === stream) return this.publish(stream, retries - 1);
      }
      this.showMediaError(`Could not publish your camera: ${failure.message}`);
    }
    this.renderTile(stream);
    this.renderControls();
  }

  // ── tiles and the main video ──────────────────────────────────────────────
  addTile(stream: Stream): void {
    const gid = stream.getGlobalID();
    if (this.tiles.has(gid)) return;
    const root = create("div", "thumb video");
    root.id = `thumb-${gid}`;
    root.dataset.stream = gid;
    root.tabIndex = 0;
    const local = stream.isLocal();
    const label = local ? `${stream.getParticipant().getID()} (you${stream.isLocalMirrored() ? ", local" : ""})` : stream.getParticipant().getID();
    root.title = `Show ${label} in the main view`;
    const video = stream.playOnlyVideo(root);
    const name = create("span", "thumb-name", label);
    const state = create("span", "thumb-state");
    let action: HTMLButtonElement | null = null;
    if (!local) {
      action = create("button", "thumb-action");
      action.type = "button";
      action.addEventListener("click", (event) => {
        event.stopPropagation();
        void this.toggleSubscription(stream);
      });
    }
    root.append(state, name);
    if (action) root.append(action);
    root.addEventListener("click", () => this.setMain(stream));
    root.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this.setMain(stream);
      }
    });
    stream.on("ice-state-changed", () => this.renderTile(stream));
    const tile: Tile = { stream, root, state, video, action };
    this.tiles.set(gid, tile);
    // The local camera first, then the others in order of arrival.
    if (local) this.ui.participants.prepend(root);
    else this.ui.participants.append(root);
    this.renderTile(stream);
    this.renderThumbnailWidth();
    if (!this.main) this.setMain(stream);
  }

  removeTile(stream: Stream): void {
    const gid = stream.getGlobalID();
    const tile = this.tiles.get(gid);
    if (!tile || tile.stream !== stream) return;
    this.tiles.delete(gid);
    stream.stopPlaying(tile.video);
    tile.root.remove();
    this.renderThumbnailWidth();
    if (this.main?.stream === stream) {
      this.clearMain();
      const next = this.localStream && this.tiles.has(this.localStream.getGlobalID()) ? this.localStream : this.tiles.values().next().value?.stream;
      if (next) this.setMain(next);
    }
  }

  renderTile(stream: Stream): void {
    const tile = this.tiles.get(stream.getGlobalID());
    if (!tile || tile.stream !== stream) return;
    const ice = stream.getWebRtcPeer()?.iceConnectionState;
    let text = "";
    if (stream.isLocal()) {
      if (!stream.isLocalMirrored()) {
        if (stream.status === "negotiating") text = "Publishing…";
        else if (stream.status === "idle") text = "Not published";
        else if (stream.isVideoMuted()) text = "Camera off";
      }
    } else if (stream.status === "negotiating") {
      text = "Connecting…";
    } else if (stream.status === "idle") {
      text = stream.wanted ? "Connecting…" : "Not receiving";
    }
    if (stream.status === "live" && (ice === "disconnected" || ice === "failed")) text = "Media interrupted…";
    tile.state.textContent = text;
    if (tile.action) {
      const receiving = stream.status !== "idle";
      tile.action.textContent = receiving ? "Unsubscribe" : "Subscribe";
      tile.action.setAttribute("aria-label", `${receiving ? "Stop receiving" : "Receive"} ${stream.getParticipant().getID()}`);
    }
  }

  renderThumbnailWidth(): void {
    this.ui.participants.style.setProperty("--thumb-width", `${thumbnailWidthPercent(this.tiles.size)}%`);
  }

  setMain(stream: Stream): void {
    const ui = this.ui;
    if (this.main?.stream === stream) return;
    this.clearMain();
    const video = stream.playOnlyVideo(ui.mainVideo, undefined, { id: "main-video-element" });
    // The thumbnail already plays the sound.
    video.muted = true;
    this.main = { stream, video };
    ui.mainName.textContent = stream.isLocal() ? `${stream.getParticipant().getID()} (you)` : stream.getParticipant().getID();
    show(ui.mainEmpty, false);
    this.tiles.get(stream.getGlobalID())?.root.classList.add("active-video");
  }

  clearMain(): void {
    const main = this.main;
    if (!main) return;
    main.stream.stopPlaying(main.video);
    this.tiles.get(main.stream.getGlobalID())?.root.classList.remove("active-video");
    this.main = null;
    this.ui.mainName.textContent = "";
    show(this.ui.mainEmpty, true);
  }

  // ── controls ──────────────────────────────────────────────────────────────
  renderControls(): void {
    const ui = this.ui;
    const local = this.localStream;
    const hasCamera = local !== null;
    for (const button of [ui.buttonVolume, ui.buttonVideocam, ui.buttonPublish]) {
      button.disabled = !hasCamera;
      button.title = hasCamera ? "" : "You joined without a camera";
    }
    const audioMuted = local?.isAudioMuted() ?? false;
    const videoMuted = local?.isVideoMuted() ?? false;
    ui.buttonVolume.textContent = audioMuted ? "Unmute mic" : "Mute mic";
    ui.buttonVolume.setAttribute("aria-pressed", String(audioMuted));
    ui.buttonVolume.classList.toggle("toggle-off", audioMuted);
    ui.buttonVideocam.textContent = videoMuted ? "Start camera" : "Stop camera";
    ui.buttonVideocam.setAttribute("aria-pressed", String(videoMuted));
    ui.buttonVideocam.classList.toggle("toggle-off", videoMuted);
    ui.buttonPublish.textContent = local && local.status !== "idle" ? "Unpublish" : "Publish";
    this.renderHat();
  }

  toggleAudio(): void {
    const local = this.localStream;
    if (!local) return;
    local.muteAudio(!local.isAudioMuted());
    this.renderControls();
  }

  toggleVideo(): void {
    const local = this.localStream;
    if (!local) return;
    local.muteVideo(!local.isVideoMuted());
    this.renderControls();
    this.renderTile(local);
  }

  async togglePublish(): Promise<void> {
    const local = this.localStream;
    if (!local) return;
    this.ui.buttonPublish.disabled = true;
    try {
      if (local.status !== "idle") {
        await local.unpublish();
        this.hatOn = false;
      } else {
        await this.publish(local);
      }
    } catch (error) {
      this.showMediaError(`Could not unpublish: ${errorOf(error).message}`);
    } finally {
      this.renderTile(local);
      this.renderControls();
    }
  }

  async toggleSubscription(stream: Stream): Promise<void> {
    try {
      if (stream.status !== "idle") await stream.unsubscribe();
      else await stream.subscribe();
    } catch (error) {
      this.showMediaError(`Could not ${stream.status === "idle" ? "receive" : "stop receiving"} ${stream.getParticipant().getID()}: ${errorOf(error).message}`);
    }
    this.renderTile(stream);
  }

  renderHat(): void {
    const ui = this.ui;
    const available = this.config.filters.includes(HAT_FILTER);
    const publishing = this.localStream?.status === "live";
    ui.buttonHat.disabled = !available || !publishing;
    ui.buttonHat.textContent = this.hatOn ? "Remove hat" : "Hat";
    ui.buttonHat.setAttribute("aria-pressed", String(this.hatOn));
    const reason = !available
      ? "Hat filter unavailable: the media server cannot apply it."
      : publishing
        ? ""
        : "Publish your camera to wear a hat.";
    ui.buttonHat.title = reason;
    ui.hatReason.textContent = reason;
    show(ui.hatReason, reason !== "");
  }

  async toggleHat(): Promise<void> {
    const room = this.room;
    if (!room) return;
    const wanted = !this.hatOn;
    this.ui.buttonHat.disabled = true;
    try {
      await room.sendCustomRequest({ hat: wanted });
      this.hatOn = wanted;
    } catch (error) {
      this.showMediaError(`Could not ${wanted ? "put on" : "remove"} the hat: ${errorOf(error).message}`);
    }
    this.renderHat();
  }

  async toggleFullscreen(): Promise<void> {
    try {
      if (document.fullscreenElement) await document.exitFullscreen();
      else await document.documentElement.requestFullscreen();
    } catch (error) {
      this.showMediaError(`Full screen is not available: ${errorOf(error).message}`);
    }
  }

  toggleChat(): void {
    const ui = this.ui;
    const open = ui.chat.hidden;
    show(ui.chat, open);
    ui.buttonChat.setAttribute("aria-pressed", String(open));
    if (open) {
      this.unread = 0;
      this.renderUnread();
      ui.chatInput.focus();
    }
  }

  // ── chat ──────────────────────────────────────────────────────────────────
  async sendChat(): Promise<void> {
    const ui = this.ui;
    const room = this.room;
    const text = ui.chatInput.value;
    if (!room || text.trim() === "") return;
    ui.chatInput.value = "";
    try {
      await room.sendMessage(text);
    } catch (error) {
      ui.chatInput.value = text;
      this.systemMessage(`Message not sent: ${errorOf(error).message}`);
    }
  }

  chatMessage(user: string, message: string): void {
    const mine = user === this.room?.user;
    const item = create("li", mine ? "message mine" : "message");
    item.append(create("strong", undefined, mine ? "You" : user), create("span", undefined, message));
    this.appendMessage(item);
    if (!mine && this.ui.chat.hidden) {
      this.unread += 1;
      this.renderUnread();
    }
  }

  systemMessage(text: string): void {
    this.appendMessage(create("li", "message system", text));
  }

  appendMessage(item: HTMLLIElement): void {
    const list = this.ui.messages;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(item);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  renderUnread(): void {
    this.ui.unreadBadge.textContent = String(this.unread);
    show(this.ui.unreadBadge, this.unread > 0);
  }

  // ── status ────────────────────────────────────────────────────────────────
  renderPeople(): void {
    const count = this.room ? this.room.getParticipants().length : 0;
    this.ui.peopleCount.textContent = `${count} ${count === 1 ? "person" : "people"}`;
  }

  renderConnection(state: ConnectionState): void {
    const ui = this.ui;
    const labels: Record<ConnectionState, [string, string]> = {
      new: ["Not connected", "status-warn"],
      connecting: ["Connecting…", "status-warn"],
      connected: ["Connected", "status-ok"],
      reconnecting: ["Reconnecting…", "status-warn"],
      leaving: ["Leaving…", "status-warn"],
      closed: ["Disconnected", "status-error"],
    };
    const [text, className] = labels[state];
    ui.status.textContent = text;
    ui.status.className = `status ${className}`;
    show(ui.reconnectBanner, state === "reconnecting");
    if (state !== "reconnecting") ui.reconnectText.textContent = "Connection lost. Reconnecting…";
    ui.chatInput.disabled = state !== "connected";
  }

  showMediaError(text: string): void {
    this.ui.mediaErrorText.textContent = text;
    show(this.ui.mediaBanner, true);
  }

  // ── leaving ───────────────────────────────────────────────────────────────
  async leave(): Promise<void> {
    const kurento = this.kurento;
    this.ui.buttonLeaveRoom.disabled = true;
    await kurento?.close();
    this.ui.buttonLeaveRoom.disabled = false;
    this.showLogin();
  }

  /** The stay ended on the server's or the network's side: say why. */
  ended(notice: Notice): void {
    this.resetRoom();
    const ui = this.ui;
    ui.noticeTitle.textContent = notice.title;
    ui.noticeText.textContent = notice.text;
    show(ui.noticeRejoin, notice.rejoin);
    show(ui.notice, true);
    ui.noticeBack.focus();
  }

  hideNotice(): void {
    show(this.ui.notice, false);
  }

  resetRoom(): void {
    this.clearMain();
    for (const tile of this.tiles.values()) {
      tile.stream.stopPlaying(tile.video);
      tile.root.remove();
    }
    this.tiles.clear();
    this.mirror?.dispose();
    this.mirror = null;
    this.localStream?.dispose();
    this.localStream = null;
    this.room = null;
    this.kurento = null;
    this.hatOn = false;
    show(this.ui.mediaBanner, false);
    show(this.ui.reconnectBanner, false);
  }

  showLogin(): void {
    this.resetRoom();
    const ui = this.ui;
    show(ui.roomView, false);
    show(ui.login, true);
    document.title = "Edge Room";
    this.setBusy(false);
    void this.loadRooms();
    (ui.name.value ? ui.joinBtn : ui.name).focus();
  }
}
