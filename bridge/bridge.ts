/**
 * The media bridge, assembled: KMS connections, the control link to the
 * BridgePool, one room link (and one media graph) per attached room, the
 * delivery of recorded files, and the health/metrics port. `startBridge(config)` is what `npm run bridge`,
 * `npm start` and the tests call.
 */
import type { FilterName, MediaEvent } from "../protocol/bridge.ts";
import { CloseCode } from "../protocol/close-codes.ts";
import { ATTACH_TIMEOUT_MS } from "../protocol/timeouts.ts";
import type { BridgeConfig } from "./config.ts";
import { ControlLink } from "./control-link.ts";
import { type HealthBody, startHttpServer } from "./http.ts";
import { createLogger, type Logger } from "./log.ts";
import { connectKurentoMediaServer } from "./media/kurento-media-server.ts";
import { KmsPool, type KmsSlot } from "./media/kms-pool.ts";
import type { Bandwidth, MediaServerFactory } from "./media/media-server.ts";
import { RoomMedia } from "./media/room-media.ts";
import { BridgeMetrics } from "./metrics.ts";
import type { BackoffOptions } from "./reconnecting-socket.ts";
import { prepareRecordingsDir } from "./recordings/directory.ts";
import { RecordingPaths } from "./recordings/journal.ts";
import type { FetchLike } from "./recordings/upload-api.ts";
import { RecordingUploads } from "./recordings/uploads.ts";
import { RoomLink } from "./room-link.ts";

export interface BridgeOptions {
  readonly logger?: Logger;
  /** How media servers are reached; default: kurento-client. */
  readonly mediaServerFactory?: MediaServerFactory;
  readonly backoff?: BackoffOptions;
  /** WebSocket ping interval on both links; 0 disables. Default 30 s. */
  readonly heartbeatMs?: number;
  /** `load` report interval. Default 10 s. */
  readonly loadIntervalMs?: number;
  /** How long a dropped KMS connection may take to resume its session before its media counts as lost. Default 5 s. */
  readonly kmsLostAfterMs?: number;
  /** Longest wait for the KMSes before the first `register`. Default 3 s. */
  readonly settleMs?: number;
  /** Longest wait for a room link to open when attaching. Default ATTACH_TIMEOUT_MS (10 s, protocol/timeouts.ts). */
  readonly attachTimeoutMs?: number;
  /** Video bandwidth limits per endpoint; default the original's (300–600 kbps). */
  readonly bandwidth?: Bandwidth;
  /** Between tries of a recording's upload; default 1 s doubling to 60 s. */
  readonly uploadBackoff?: BackoffOptions;
  /** What uploads recordings; default Node's fetch. */
  readonly fetch?: FetchLike;
}

export interface RoomStats {
  readonly room: string;
  readonly linkOpen: boolean;
  readonly kms: string | null;
  readonly publishers: number;
  readonly subscriptions: number;
  readonly held: string[];
}

export interface BridgeStats {
  readonly bridgeId: string;
  readonly controlConnected: boolean;
  readonly registered: boolean;
  readonly registrations: number;
  readonly rooms: RoomStats[];
  readonly pipelines: number;
  readonly endpoints: number;
  readonly kms: HealthBody["kms"];
  /** Files being recorded now, and files waiting for (or in) delivery. */
  readonly recordings: { readonly enabled: boolean; readonly active: number; readonly uploadsPending: number };
}

export interface BridgeHandle {
  readonly bridgeId: string;
  /** `http://host:port` of /health and /metrics. */
  readonly httpUrl: string;
  stats(): BridgeStats;
  /** Closes every link, releases the media it holds (bounded), stops the port. Idempotent. */
  stop(): Promise<void>;
  /** For tests: drop the control link or a room link (they reconnect). */
  dropControlLink(): void;
  dropRoomLink(room: string): void;
}

export async function startBridge(config: BridgeConfig, options: BridgeOptions = {}): Promise<BridgeHandle> {
  const log = (options.logger ?? createLogger({ level: config.logLevel })).child({ bridgeId: config.bridgeId });
  const metrics = new BridgeMetrics();
  const rooms = new Map<string, RoomLink>();
  let control: ControlLink | undefined;

  // Recordings: the directory first (created at start), then the deliveries an earlier run left.
  const recordingsDir = await prepareRecordingsDir(config.recordings.dir);
  if (!recordingsDir.writable) log.warn("recording is off", { problem: recordingsDir.problem });
  const uploads = new RecordingUploads({
    dir: config.recordings.dir,
    workerUrl: config.workerUrl,
    keepLocal: config.recordings.keepLocal,
    log,
    ...(options.uploadBackoff ? { backoff: options.uploadBackoff } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  /** What every room's media gets: where to record, or why it cannot. */
  const roomRecording = recordingsDir.writable
    ? { recordings: { paths: new RecordingPaths(config.recordings.dir, config.recordings.mediaDir), uploads } }
    : { recordingUnavailable: recordingsDir.problem };
  if (recordingsDir.writable) {
    void uploads.resumeFromDisk().catch((error: unknown) =>
      log.error("could not scan RECORDINGS_DIR for unfinished deliveries", {
        error: error instanceof Error ? error.message : String(error),
      }),
    );
  }

  const roomsOn = (slot: KmsSlot): RoomLink[] => [...rooms.values()].filter((link) => link.media.pinnedSlot === slot);

  const pool = new KmsPool({
    kms: config.kms,
    dialUri: config.dialUri,
    factory: options.mediaServerFactory ?? connectKurentoMediaServer,
    requestTimeoutMs: config.requestTimeoutMs,
    lostAfterMs: options.kmsLostAfterMs ?? 5000,
    log,
    onLost: (slot, reason) => {
      for (const link of roomsOn(slot)) link.media.mediaLost(reason);
      control?.reportLoad();
    },
    onStateChange: () => control?.capabilitiesChanged(),
  });

  const filters = (): FilterName[] => (pool.supportsFilters ? ["hat"] : []);

  const openRoom = (room: string): RoomLink => {
    const existing = rooms.get(room);
    if (existing) return existing;
    let link: RoomLink | undefined;
    const media = new RoomMedia({
      room,
      pool,
      hat: config.hat,
      ice: { config: config.mediaIce, bridgeId: config.bridgeId },
      ...(options.bandwidth ? { bandwidth: options.bandwidth } : {}),
      log,
      emit: (event: MediaEvent) => link?.notify(event),
      onPipelineChange: () => control?.reportLoad(),
      ...roomRecording,
    });
    link = new RoomLink({
      room,
      workerUrl: config.workerUrl,
      bridgeId: config.bridgeId,
      secret: config.bridgeSecret,
      media,
      metrics,
      log,
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.heartbeatMs !== undefined ? { heartbeatMs: options.heartbeatMs } : {}),
      onDetached: (name) => {
        const current = rooms.get(name);
        if (!current) return;
        rooms.delete(name);
        void current.media.releaseRoom().finally(() => control?.reportLoad());
      },
    });
    rooms.set(room, link);
    link.start();
    log.info("room attached", { room });
    return link;
  };

  const http = await startHttpServer({
    host: config.httpHost,
    port: config.httpPort,
    log,
    health: () => health(),
    metrics: () => renderMetrics(),
  });

  control = new ControlLink({
    workerUrl: config.workerUrl,
    bridgeId: config.bridgeId,
    secret: config.bridgeSecret,
    kms: config.kms,
    log,
    ...(options.backoff ? { backoff: options.backoff } : {}),
    ...(options.heartbeatMs !== undefined ? { heartbeatMs: options.heartbeatMs } : {}),
    loadIntervalMs: options.loadIntervalMs ?? 10_000,
    rooms: () => [...rooms.keys()].sort(),
    filters,
    recording: () => recordingsDir.writable && pool.supportsRecording,
    simulcast: () => pool.supportsSimulcast,
    pipelines: () => pool.totalPipelines,
    beforeRegister: () => pool.settle(options.settleMs ?? 3000),
    attach: async (room) => {
      const link = openRoom(room);
      // A link waiting in backoff (say after a refused token) tries again now.
      if (!link.isOpen) link.retryNow();
      await link.whenOpen(options.attachTimeoutMs ?? ATTACH_TIMEOUT_MS);
    },
    onRegistered: () => {
      // Back after a drop: every room link waiting in backoff tries now.
      for (const link of rooms.values()) if (!link.isOpen) link.retryNow();
    },
  });
  control.start();
  log.info("media bridge started", { worker: config.workerUrl, kms: config.kms.map((kms) => kms.uri), http: http.url });

  function kmsStats(): HealthBody["kms"] {
    return pool.slots.map((slot) => ({
      uri: slot.uri,
      connected: slot.connected,
      state: slot.server.state,
      pipelines: slot.pipelines,
      limit: slot.limit,
      filters: slot.server.supportsFilters,
    }));
  }

  function roomStats(): RoomStats[] {
    return [...rooms.values()].map((link) => {
      const media = link.media.stats();
      return {
        room: link.room,
        linkOpen: link.isOpen,
        kms: media.kms,
        publishers: media.publishers,
        subscriptions: media.subscriptions,
        held: link.media.heldUsers(),
      };
    });
  }

  function endpoints(): number {
    let count = 0;
    for (const link of rooms.values()) count += link.media.stats().endpoints;
    return count;
  }

  function activeRecordings(): number {
    let count = 0;
    for (const link of rooms.values()) count += link.media.stats().recordings;
    return count;
  }

  function health(): HealthBody {
    const kms = kmsStats();
    const ok = control?.registered === true && kms.some((entry) => entry.connected);
    return {
      status: ok ? "ok" : "degraded",
      bridgeId: config.bridgeId,
      controlConnected: control?.isOpen ?? false,
      registered: control?.registered ?? false,
      rooms: rooms.size,
      pipelines: pool.totalPipelines,
      endpoints: endpoints(),
      kms,
    };
  }

  function renderMetrics(): string {
    const kms = kmsStats();
    const links = [...rooms.values()];
    return metrics.render([
      { name: "bridge_rooms", help: "Rooms attached to this bridge.", samples: [{ value: rooms.size }] },
      {
        name: "bridge_room_links_open",
        help: "Room links currently open.",
        samples: [{ value: links.filter((link) => link.isOpen).length }],
      },
      {
        name: "bridge_pipelines",
        help: "Media pipelines this bridge holds.",
        samples: [{ value: pool.totalPipelines }],
      },
      {
        name: "bridge_endpoints",
        help: "WebRtcEndpoints this bridge holds (publishers and subscriptions).",
        samples: [{ value: endpoints() }],
      },
      {
        name: "bridge_control_connected",
        help: "1 when the control link is open and registered.",
        samples: [{ value: control?.registered ? 1 : 0 }],
      },
      {
        name: "bridge_kms_connections",
        help: "Media servers this bridge is connected to.",
        samples: [{ value: kms.filter((entry) => entry.connected).length }],
      },
      {
        name: "bridge_kms_connected",
        help: "1 when the bridge is connected to this media server.",
        samples: kms.map((entry) => ({ labels: { uri: entry.uri }, value: entry.connected ? 1 : 0 })),
      },
      {
        name: "bridge_kms_pipelines",
        help: "Pipelines on this media server held by this bridge.",
        samples: kms.map((entry) => ({ labels: { uri: entry.uri }, value: entry.pipelines })),
      },
      {
        name: "bridge_recordings_active",
        help: "Files being recorded now (one per recorded stream).",
        samples: [{ value: activeRecordings() }],
      },
      {
        name: "bridge_recording_uploads_pending",
        help: "Recorded files waiting for, or in, delivery to the worker.",
        samples: [{ value: uploads.pending }],
      },
    ]);
  }

  let stopping: Promise<void> | undefined;
  return {
    bridgeId: config.bridgeId,
    httpUrl: http.url,
    stats: () => ({
      bridgeId: config.bridgeId,
      controlConnected: control?.isOpen ?? false,
      registered: control?.registered ?? false,
      registrations: control?.registrations ?? 0,
      rooms: roomStats(),
      pipelines: pool.totalPipelines,
      endpoints: endpoints(),
      kms: kmsStats(),
      recordings: {
        enabled: recordingsDir.writable && pool.supportsRecording,
        active: activeRecordings(),
        uploadsPending: uploads.pending,
      },
    }),
    dropControlLink: () => control?.drop(),
    dropRoomLink: (room) => rooms.get(room)?.drop(),
    stop: () => {
      stopping ??= (async () => {
        log.info("media bridge stopping");
        await control?.stop();
        const links = [...rooms.values()];
        rooms.clear();
        await Promise.all(links.map((link) => link.stop(CloseCode.GOING_AWAY, "bridge stopping")));
        // Release what the bridge holds on the media servers, but never hang on a dead one.
        await Promise.race([
          Promise.all(links.map((link) => link.media.releaseRoom())),
          new Promise((resolve) => setTimeout(resolve, 3000).unref()),
        ]);
        // Deliveries still under way stop here; their journals let the next start finish them.
        await uploads.stop();
        await pool.close();
        await http.close();
        log.info("media bridge stopped");
      })();
      return stopping;
    },
  };
}
