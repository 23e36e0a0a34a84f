/**
 * The thumbnails (one tile per stream: video, name, state, and for remote
 * streams a Subscribe / Unsubscribe button) and the main video, chosen by
 * clicking a thumbnail.
 */
import type { Stream } from "../client/stream.ts";
import type { DemoApp } from "./app.ts";
import { create, show } from "./dom.ts";
import { thumbnailWidthPercent } from "./layout.ts";

interface Tile {
  readonly stream: Stream;
  readonly root: HTMLDivElement;
  readonly state: HTMLSpanElement;
  readonly video: HTMLVideoElement;
  readonly action: HTMLButtonElement | null;
}

export class Tiles {
  readonly #app: DemoApp;
  /** By stream global id. */
  readonly #tiles = new Map<string, Tile>();
  main: { stream: Stream; video: HTMLVideoElement } | null = null;

  constructor(app: DemoApp) {
    this.#app = app;
  }

  add(stream: Stream): void {
    const gid = stream.getGlobalID();
    if (this.#tiles.has(gid)) return;
    const root = create("div", "thumb video");
    root.id = `thumb-${gid}`;
    root.dataset.stream = gid;
    root.tabIndex = 0;
    const local = stream.isLocal();
    const who = stream.getParticipant().getID();
    const label = local ? `${who} (you${stream.isLocalMirrored() ? ", local" : ""})` : who;
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
        void this.#app.controls.toggleSubscription(stream);
      });
    }
    root.append(state, name);
    if (action) root.append(action);
    if (!local && this.#app.room?.role === "moderator") root.append(this.#moderation(stream, who));
    root.addEventListener("click", () => this.setMain(stream));
    root.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this.setMain(stream);
      }
    });
    stream.on("ice-state-changed", () => this.render(stream));
    const tile: Tile = { stream, root, state, video, action };
    this.#tiles.set(gid, tile);
    // The local camera first, then the others in order of arrival.
    const participants = this.#app.ui.participants;
    if (local) participants.prepend(root);
    else participants.append(root);
    this.render(stream);
    this.#renderWidth();
    if (!this.main) this.setMain(stream);
  }

  /** A moderator's buttons on another participant's tile: stop that video, remove that participant. */
  #moderation(stream: Stream, who: string): HTMLDivElement {
    const box = create("div", "thumb-moderation");
    const stop = create("button", "thumb-moderate", "Stop video");
    stop.type = "button";
    stop.setAttribute("aria-label", `Stop ${who}'s video`);
    const remove = create("button", "thumb-moderate", "Remove");
    remove.type = "button";
    remove.setAttribute("aria-label", `Remove ${who} from the room`);
    const act = (button: HTMLButtonElement, action: () => Promise<void>, done: string, verb: string) =>
      button.addEventListener("click", (event) => {
        event.stopPropagation();
        button.disabled = true;
        action().then(
          () => this.#app.chat.systemMessage(`You ${done} ${who}`),
          (error: unknown) => {
            button.disabled = false;
            this.#app.chat.systemMessage(`Could not ${verb} ${who}: ${errorText(error)}`);
          },
        );
      });
    const room = this.#app.room;
    act(
      stop,
      () => room?.forceUnpublish(who, stream.getGlobalID()) ?? Promise.resolve(),
      "stopped the video of",
      "stop the video of",
    );
    act(remove, () => room?.evictParticipant(who) ?? Promise.resolve(), "removed", "remove");
    box.append(stop, remove);
    return box;
  }

  remove(stream: Stream): void {
    const gid = stream.getGlobalID();
    const tile = this.#tiles.get(gid);
    if (!tile || tile.stream !== stream) return;
    this.#tiles.delete(gid);
    stream.stopPlaying(tile.video);
    tile.root.remove();
    this.#renderWidth();
    if (this.main?.stream === stream) {
      this.clearMain();
      const localStream = this.#app.localStream;
      const next = localStream && this.#tiles.has(localStream.getGlobalID()) ? localStream : this.#first();
      if (next) this.setMain(next);
    }
  }

  render(stream: Stream): void {
    const tile = this.#tiles.get(stream.getGlobalID());
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
      tile.action.setAttribute(
        "aria-label",
        `${receiving ? "Stop receiving" : "Receive"} ${stream.getParticipant().getID()}`,
      );
    }
  }

  setMain(stream: Stream): void {
    const ui = this.#app.ui;
    if (this.main?.stream === stream) return;
    this.clearMain();
    const video = stream.playOnlyVideo(ui.mainVideo, undefined, { id: "main-video-element" });
    // The thumbnail already plays the sound.
    video.muted = true;
    this.main = { stream, video };
    const who = stream.getParticipant().getID();
    ui.mainName.textContent = stream.isLocal() ? `${who} (you)` : who;
    show(ui.mainEmpty, false);
    this.#tiles.get(stream.getGlobalID())?.root.classList.add("active-video");
  }

  clearMain(): void {
    const main = this.main;
    if (!main) return;
    main.stream.stopPlaying(main.video);
    this.#tiles.get(main.stream.getGlobalID())?.root.classList.remove("active-video");
    this.main = null;
    this.#app.ui.mainName.textContent = "";
    show(this.#app.ui.mainEmpty, true);
  }

  /** Removes every tile and the main video. */
  clear(): void {
    this.clearMain();
    for (const tile of this.#tiles.values()) {
      tile.stream.stopPlaying(tile.video);
      tile.root.remove();
    }
    this.#tiles.clear();
  }

  #first(): Stream | undefined {
    return this.#tiles.values().next().value?.stream;
  }

  #renderWidth(): void {
    this.#app.ui.participants.style.setProperty("--thumb-width", `${thumbnailWidthPercent(this.#tiles.size)}%`);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
