/**
 * The control bar: microphone, camera, publish, screen sharing, the hat
 * filter, full screen; and the per-thumbnail Subscribe / Unsubscribe.
 */
import type { Stream } from "../client/stream.ts";
import type { DemoApp } from "./app.ts";
import { show } from "./dom.ts";
import { errorOf } from "./messages.ts";

const HAT_FILTER = "hat";

export class Controls {
  readonly #app: DemoApp;
  hatOn = false;

  constructor(app: DemoApp) {
    this.#app = app;
  }

  bind(): void {
    const ui = this.#app.ui;
    ui.buttonVolume.addEventListener("click", () => this.toggleAudio());
    ui.buttonVideocam.addEventListener("click", () => this.toggleVideo());
    ui.buttonPublish.addEventListener("click", () => void this.togglePublish());
    ui.buttonShareScreen.addEventListener("click", () => void this.toggleScreenShare());
    ui.buttonHat.addEventListener("click", () => void this.toggleHat());
    ui.buttonRecord.addEventListener("click", () => void this.toggleRecording());
    ui.buttonFullscreen.addEventListener("click", () => void this.toggleFullscreen());
    document.addEventListener("fullscreenchange", () => {
      ui.buttonFullscreen.textContent = document.fullscreenElement ? "Exit full screen" : "Full screen";
    });
  }

  render(): void {
    const ui = this.#app.ui;
    const local = this.#app.localStream;
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
    this.renderScreenShare();
    this.renderHat();
    this.renderRecording();
  }

  /** The red badge whenever the room is recorded; the Record button only where the server lets clients record. */
  renderRecording(): void {
    const app = this.#app;
    const ui = app.ui;
    const recording = app.room?.recording ?? null;
    show(ui.recordingBadge, recording !== null);
    show(ui.buttonRecord, app.config.recordingFromClients === true);
    ui.buttonRecord.textContent = recording ? "Stop recording" : "Record";
    ui.buttonRecord.setAttribute("aria-pressed", String(recording !== null));
  }

  async toggleRecording(): Promise<void> {
    const room = this.#app.room;
    if (!room) return;
    const recording = room.recording !== null;
    this.#app.ui.buttonRecord.disabled = true;
    try {
      if (recording) await room.stopRecording();
      else await room.startRecording();
    } catch (error) {
      this.#app.roomView.showMediaError(
        `Could not ${recording ? "stop" : "start"} recording: ${errorOf(error).message}`,
      );
    } finally {
      this.#app.ui.buttonRecord.disabled = false;
      this.renderRecording();
    }
  }

  toggleAudio(): void {
    const local = this.#app.localStream;
    if (!local) return;
    local.muteAudio(!local.isAudioMuted());
    this.render();
  }

  toggleVideo(): void {
    const local = this.#app.localStream;
    if (!local) return;
    local.muteVideo(!local.isVideoMuted());
    this.render();
    this.#app.tiles.render(local);
  }

  async togglePublish(): Promise<void> {
    const app = this.#app;
    const local = app.localStream;
    if (!local) return;
    app.ui.buttonPublish.disabled = true;
    try {
      if (local.status !== "idle") {
        await local.unpublish();
        this.hatOn = false;
      } else {
        await app.roomView.publish(local);
      }
    } catch (error) {
      app.roomView.showMediaError(`Could not unpublish: ${errorOf(error).message}`);
    } finally {
      app.tiles.render(local);
      this.render();
    }
  }

  /** Hidden where the browser cannot share a screen (no getDisplayMedia: mobile browsers, insecure pages). */
  renderScreenShare(): void {
    const ui = this.#app.ui;
    const sharing = this.#app.room?.getScreenShare() ?? null;
    show(ui.buttonShareScreen, typeof navigator.mediaDevices?.getDisplayMedia === "function");
    ui.buttonShareScreen.textContent = sharing ? "Stop sharing" : "Share screen";
    ui.buttonShareScreen.setAttribute("aria-pressed", String(sharing !== null));
  }

  async toggleScreenShare(): Promise<void> {
    const app = this.#app;
    const room = app.room;
    if (!room) return;
    const button = app.ui.buttonShareScreen;
    button.disabled = true;
    try {
      if (room.getScreenShare()) {
        await room.stopScreenShare();
      } else {
        const promise = room.shareScreen();
        // Shows "Stop sharing" while the browser asks which screen.
        this.renderScreenShare();
        await promise;
        app.chat.systemMessage("You are sharing your screen");
      }
    } catch (error) {
      // Closing the browser's picker is a choice, not an error.
      const declined = error instanceof Error && (error.name === "NotAllowedError" || error.name === "AbortError");
      if (!declined) app.roomView.showMediaError(`Could not share your screen: ${errorOf(error).message}`);
    } finally {
      button.disabled = false;
      this.renderScreenShare();
    }
  }

  async toggleSubscription(stream: Stream): Promise<void> {
    const receiving = stream.status !== "idle";
    const change = receiving ? stream.unsubscribe() : stream.subscribe();
    // The stream's status changed as the call began (idle, or negotiating):
    // show it now, not one server round trip later (a second click meanwhile
    // would otherwise undo what the button still offered).
    this.#app.tiles.render(stream);
    try {
      await change;
    } catch (error) {
      const what = receiving ? "stop receiving" : "receive";
      const who = stream.getParticipant().getID();
      this.#app.roomView.showMediaError(`Could not ${what} ${who}: ${errorOf(error).message}`);
    }
    this.#app.tiles.render(stream);
  }

  renderHat(): void {
    const app = this.#app;
    const ui = app.ui;
    const available = app.config.filters.includes(HAT_FILTER);
    const publishing = app.localStream?.status === "live";
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
    const room = this.#app.room;
    if (!room) return;
    const wanted = !this.hatOn;
    this.#app.ui.buttonHat.disabled = true;
    try {
      await room.sendCustomRequest({ hat: wanted });
      this.hatOn = wanted;
    } catch (error) {
      this.#app.roomView.showMediaError(`Could not ${wanted ? "put on" : "remove"} the hat: ${errorOf(error).message}`);
    }
    this.renderHat();
  }

  async toggleFullscreen(): Promise<void> {
    try {
      if (document.fullscreenElement) await document.exitFullscreen();
      else await document.documentElement.requestFullscreen();
    } catch (error) {
      this.#app.roomView.showMediaError(`Full screen is not available: ${errorOf(error).message}`);
    }
  }
}
