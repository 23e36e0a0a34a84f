/**
 * A stream's DOM: the `<video>` elements that play it (kept bound to its
 * media as it comes and goes) and the thumbnails made for it, all removed
 * when the stream is disposed.
 */
import { RoomClientError } from "./errors.ts";

interface VideoBinding {
  readonly video: HTMLVideoElement;
  readonly thumbnailId: string | undefined;
}

/** What the renderer reads of its stream. */
export interface RenderedStream {
  /** `<user>_<id>`: element ids and messages. */
  getGlobalID(): string;
  /** What the videos show (null: nothing yet). */
  getDisplayedMediaStream(): MediaStream | null;
  /** Local streams play muted (no echo of your own microphone). */
  readonly local: boolean;
}

export class StreamRenderer {
  readonly #stream: RenderedStream;
  readonly #videos: VideoBinding[] = [];
  readonly #elements: HTMLElement[] = [];

  constructor(stream: RenderedStream) {
    this.#stream = stream;
  }

  playOnlyVideo(
    parentElement: string | HTMLElement,
    thumbnailId?: string,
    options: { id?: string } = {},
  ): HTMLVideoElement {
    const gid = this.#stream.getGlobalID();
    const parent = typeof parentElement === "string" ? document.getElementById(parentElement) : parentElement;
    if (!parent) throw new RoomClientError("no-element", `no element '${String(parentElement)}' to play ${gid} in`);
    const video = document.createElement("video");
    video.id = options.id ?? `video-${gid}`;
    video.autoplay = true;
    video.playsInline = true;
    video.controls = false;
    video.muted = this.#stream.local;
    this.#videos.push({ video, thumbnailId });
    parent.appendChild(video);
    this.#bind({ video, thumbnailId });
    return video;
  }

  playThumbnail(thumbnailId: string): HTMLElement {
    const gid = this.#stream.getGlobalID();
    const host = document.getElementById(thumbnailId);
    if (!host) throw new RoomClientError("no-element", `no element '${thumbnailId}' for the thumbnail of ${gid}`);
    const container = document.createElement("div");
    container.className = "participant";
    container.id = gid;
    const name = document.createElement("div");
    name.className = "name";
    name.id = `name-${gid}`;
    name.textContent = gid;
    container.appendChild(name);
    host.appendChild(container);
    this.#elements.push(container);
    this.playOnlyVideo(container, thumbnailId);
    return container;
  }

  stopPlaying(video: HTMLVideoElement): void {
    const index = this.#videos.findIndex((b) => b.video === video);
    if (index >= 0) this.#videos.splice(index, 1);
    video.srcObject = null;
    video.remove();
  }

  /** The media to show changed: every video follows. */
  refresh(): void {
    for (const binding of this.#videos) this.#bind(binding);
  }

  /** Removes every video and thumbnail made for the stream. */
  clear(): void {
    for (const { video } of this.#videos.splice(0)) {
      video.srcObject = null;
      video.remove();
    }
    for (const element of this.#elements.splice(0)) element.remove();
  }

  #bind(binding: VideoBinding): void {
    const media = this.#stream.getDisplayedMediaStream();
    const { video, thumbnailId } = binding;
    if (video.srcObject !== media) video.srcObject = media;
    if (!media) return;
    if (thumbnailId) {
      const thumb = document.getElementById(thumbnailId);
      if (thumb) thumb.style.removeProperty("display");
    }
    // Autoplay with sound needs a user gesture; fall back to muted playback rather than none.
    video.play().catch((error: unknown) => {
      if (error instanceof DOMException && error.name === "NotAllowedError" && !video.muted) {
        video.muted = true;
        void video.play().catch(() => undefined);
      }
    });
  }
}
