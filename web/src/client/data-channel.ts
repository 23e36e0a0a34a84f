/** The DataChannel of a published stream (`data: true`): messages in as `data` events, `sendData` out. */
import { RoomClientError } from "./errors.ts";

export class DataChannelLink {
  #channel: RTCDataChannel | null = null;

  /** Takes the channel of a new negotiation; its messages go to `onData`. */
  attach(channel: RTCDataChannel, onData: (data: string | ArrayBuffer) => void): void {
    this.#channel = channel;
    channel.onmessage = (event: MessageEvent) => {
      const data: unknown = event.data;
      if (typeof data === "string" || data instanceof ArrayBuffer) onData(data);
    };
  }

  /** The negotiation is over (its peer connection closed the channel). */
  detach(): void {
    this.#channel = null;
  }

  /** Sends on the open channel; `streamId` names the stream in errors. */
  send(data: string | ArrayBuffer, streamId: string): void {
    const channel = this.#channel;
    if (channel?.readyState !== "open") {
      const state = channel ? ` (${channel.readyState})` : "";
      throw new RoomClientError("data-channel", `the data channel of ${streamId} is not open${state}`);
    }
    if (typeof data === "string") channel.send(data);
    else channel.send(data);
  }
}
