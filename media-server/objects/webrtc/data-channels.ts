import type { RTCDataChannel, RTCPeerConnection } from "werift";
import { KurentoError } from "../../errors.ts";

const MAX_PENDING_DATA_MESSAGES = 100;

/** `createDataChannel`'s params as Kurento sends them (null and -1 mean "not set"). */
export interface DataChannelParams {
  label?: string | null;
  ordered?: boolean | null;
  maxPacketLifeTime?: number | null;
  maxRetransmits?: number | null;
  protocol?: string | null;
}

/** What the data channels need from their endpoint. */
export interface DataChannelHost {
  readonly id: string;
  readonly useDataChannels: boolean;
  emitEvent(type: string, fields?: Record<string, unknown>): void;
}

export interface DataChannelHooks {
  /** The SDP exchange is complete (channels can only be opened after it). */
  isNegotiated(): boolean;
  /** A message from the peer, to go down the graph's DATA connections. */
  received(label: string, message: string | Buffer): void;
}

/**
 * The SCTP data channels of one WebRtcEndpoint created with useDataChannels:
 * channels the peer opens are accepted, messages travel along DATA
 * connections to the sink's channel of the same label (opened on demand,
 * messages queued until it is open). Without the flag, channels are closed.
 */
export class DataChannels {
  private readonly pc: RTCPeerConnection;
  private readonly host: DataChannelHost;
  private readonly hooks: DataChannelHooks;
  private readonly channels = new Set<RTCDataChannel>();
  private readonly pending = new Map<RTCDataChannel, Array<string | Buffer>>();

  constructor(pc: RTCPeerConnection, host: DataChannelHost, hooks: DataChannelHooks) {
    this.pc = pc;
    this.host = host;
    this.hooks = hooks;
    pc.onDataChannel.subscribe((channel) => this.adopt(channel));
  }

  /** A message from the graph: sent on (or queued for) this peer's channel with the same label. */
  accept(label: string, message: string | Buffer): void {
    if (!this.host.useDataChannels || !this.hooks.isNegotiated() || !this.pc.sctpTransport) return;
    let channel = [...this.channels].find(
      (candidate) =>
        candidate.label === label && candidate.readyState !== "closed" && candidate.readyState !== "closing",
    );
    if (!channel) channel = this.create({ label });
    if (channel.readyState === "open") {
      channel.send(message);
      return;
    }
    const queue = this.pending.get(channel) ?? [];
    if (queue.length < MAX_PENDING_DATA_MESSAGES) queue.push(message);
    this.pending.set(channel, queue);
  }

  create(params: DataChannelParams): RTCDataChannel {
    if (!this.host.useDataChannels) {
      throw new KurentoError("MEDIA_OBJECT_ILLEGAL_PARAM_ERROR", `${this.host.id} was created without useDataChannels`);
    }
    const channel = this.pc.createDataChannel(params.label ?? "", {
      ordered: params.ordered ?? true,
      ...(params.maxPacketLifeTime != null && params.maxPacketLifeTime >= 0
        ? { maxPacketLifeTime: params.maxPacketLifeTime }
        : {}),
      ...(params.maxRetransmits != null && params.maxRetransmits >= 0 ? { maxRetransmits: params.maxRetransmits } : {}),
      protocol: params.protocol ?? "",
    });
    this.adopt(channel);
    return channel;
  }

  close(channelId: number): void {
    const channel = [...this.channels].find((candidate) => candidate.id === channelId);
    if (!channel)
      throw new KurentoError("MEDIA_OBJECT_ILLEGAL_PARAM_ERROR", `${this.host.id} has no data channel ${channelId}`);
    channel.close();
  }

  private adopt(channel: RTCDataChannel): void {
    if (!this.host.useDataChannels) {
      // KMS refuses data channels on endpoints created without them.
      channel.close();
      return;
    }
    this.channels.add(channel);
    channel.onMessage.subscribe((message) => this.hooks.received(channel.label, message));
    const opened = () => {
      this.host.emitEvent("DataChannelOpened", { channelId: channel.id });
      for (const message of this.pending.get(channel) ?? []) channel.send(message);
      this.pending.delete(channel);
    };
    if (channel.readyState === "open") opened();
    channel.stateChanged.subscribe((state) => {
      if (state === "open") opened();
      if (state === "closed") {
        this.channels.delete(channel);
        this.pending.delete(channel);
        this.host.emitEvent("DataChannelClosed", { channelId: channel.id });
      }
    });
  }
}
