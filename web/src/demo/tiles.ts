/**
 * The thumbnails (one tile per stream: video, name, state, and for remote
 * streams a Subscribe / Unsubscribe button) and the main video.
 *
 * The main video is chosen automatically, unless the user pinned one by
 * clicking its thumbnail (clicking it again unpins): someone's shared screen
 * first, else whoever speaks (the active speaker; never yourself, whom you
 * do not need to see large), else what was shown. The tile of whoever
 * speaks is highlighted (`speaking`).
 */
import type { VideoQuality } from "../client/index.ts";
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
  /** The stream the user chose for the main video (automatic choice while null). */
  pinned: Stream | null = null;

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
    const label = tileLabel(stream);
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
    root.addEventListener("click", () => this.togglePin(stream));
    root.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this.togglePin(stream);
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
    if (stream.kind === "screen") root.classList.add("screen");
    // A thumbnail needs the smallest simulcast layer; the main video asks for the best one (setMain).
    if (!local) this.#askQuality(stream, "low");
    // A screen someone shares takes the main view (your own stays a thumbnail: a screen showing itself is no use).
    if (!this.main || (!this.pinned && stream.kind === "screen" && !local)) this.setMain(stream);
  }

  /** Clicking a thumbnail pins it as the main video; clicking the pinned one again unpins it. */
  togglePin(stream: Stream): void {
    if (this.pinned === stream) {
      this.#setPinned(null);
      this.#chooseMain();
      return;
    }
    this.#setPinned(stream);
    this.setMain(stream);
  }

  #setPinned(stream: Stream | null): void {
    if (this.pinned) this.#tiles.get(this.pinned.getGlobalID())?.root.classList.remove("pinned");
    this.pinned = stream;
    if (stream) this.#tiles.get(stream.getGlobalID())?.root.classList.add("pinned");
  }

  /** The highlight of whoever speaks. */
  setSpeaking(stream: Stream, speaking: boolean): void {
    const tile = this.#tiles.get(stream.getGlobalID());
    if (tile?.stream === stream) tile.root.classList.toggle("speaking", speaking);
  }

  /** The main video follows the active speaker, unless a pinned stream or a shared screen holds it. */
  activeSpeaker(stream: Stream | null): void {
    if (!stream || stream.isLocal() || this.pinned || this.main?.stream.kind === "screen") return;
    if (this.#tiles.get(stream.getGlobalID())?.stream === stream) this.setMain(stream);
  }

  /** The automatic choice: a remote shared screen, the active speaker, your own camera, the first tile. */
  #chooseMain(): void {
    const tiles = [...this.#tiles.values()].map((t) => t.stream);
    const screen = tiles.filter((s) => s.kind === "screen" && !s.isLocal()).at(-1);
    const speaker = this.#app.room?.getActiveSpeaker() ?? null;
    const localStream = this.#app.localStream;
    const next =
      screen ??
      (speaker && !speaker.isLocal() && tiles.includes(speaker) ? speaker : undefined) ??
      (this.main && tiles.includes(this.main.stream) ? this.main.stream : undefined) ??
      (localStream && tiles.includes(localStream) ? localStream : undefined) ??
      tiles[0];
    if (next) this.setMain(next);
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
    if (this.pinned === stream) this.pinned = null;
    if (this.main?.stream === stream) {
      this.clearMain();
      this.#chooseMain();
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
    const previous = this.main?.stream;
    this.clearMain();
    if (previous && !previous.isLocal()) this.#askQuality(previous, "low");
    if (!stream.isLocal()) this.#askQuality(stream, "high");
    const video = stream.playOnlyVideo(ui.mainVideo, undefined, { id: "main-video-element" });
    // The thumbnail already plays the sound.
    video.muted = true;
    this.main = { stream, video };
    const who = stream.getParticipant().getID();
    const screen = stream.kind === "screen" ? " (screen)" : "";
    ui.mainName.textContent = stream.isLocal() ? `${who} (you)${screen}` : `${who}${screen}`;
    ui.mainVideo.classList.toggle("main-screen", stream.kind === "screen");
    show(ui.mainEmpty, false);
    this.#tiles.get(stream.getGlobalID())?.root.classList.add("active-video");
  }

  /** Simulcast layer of a remote stream; without simulcast (KMS) the server has one layer and this changes nothing. */
  #askQuality(stream: Stream, quality: VideoQuality): void {
    stream.setVideoQuality(quality).catch(() => {
      // The stream went away meanwhile: nothing to show, nothing to tell.
    });
  }

  clearMain(): void {
    const main = this.main;
    if (!main) return;
    main.stream.stopPlaying(main.video);
    this.#tiles.get(main.stream.getGlobalID())?.root.classList.remove("active-video");
    this.main = null;
    this.#app.ui.mainName.textContent = "";
    this.#app.ui.mainVideo.classList.remove("main-screen");
    show(this.#app.ui.mainEmpty, true);
  }

  /** Removes every tile and the main video. */
  clear(): void {
    this.clearMain();
    this.pinned = null;
    for (const tile of this.#tiles.values()) {
      tile.stream.stopPlaying(tile.video);
      tile.root.remove();
    }
    this.#tiles.clear();
  }

  #renderWidth(): void {
    this.#app.ui.participants.style.setProperty("--thumb-width", `${thumbnailWidthPercent(this.#tiles.size)}%`);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function tileLabel(stream: Stream): string {
  const who = stream.getParticipant().getID();
  const notes = [
    ...(stream.isLocal() ? ["you"] : []),
    ...(stream.isLocalMirrored() ? ["local"] : []),
    ...(stream.kind === "screen" ? ["screen"] : []),
  ];
  return notes.length > 0 ? `${who} (${notes.join(", ")})` : who;
}
