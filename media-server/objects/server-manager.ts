import os from "node:os";
import { z } from "zod";
import { KurentoError } from "../errors.ts";
import { filterSupport } from "./filters/gstreamer.ts";
import { MEDIA_OBJECT_OPERATIONS, MediaObject, type MediaServerContext } from "./media-object.ts";
import { invokeOperation, noParams, operation, operationTable, type Caller, type RawParams } from "./operations.ts";

const SERVER_MANAGER_ID = "manager_ServerManager";
const REPORTED_VERSION = "7.2.0";

/**
 * What the manager reports about sessions and pipelines, as the server supplies
 * it for the calling session: its own session and pipelines only (KMS lists
 * every one, which would hand any client the ids of others' sessions and objects).
 */
export interface ServerFacts {
  sessionIds(caller: Caller | undefined): string[];
  pipelineIds(caller: Caller | undefined): string[];
}

/** The permanent `manager_ServerManager` object kurento-client asks for `getInfo` when it connects. */
export class ServerManager extends MediaObject {
  readonly typeName = "ServerManager";
  readonly hierarchy = ["kurento.MediaObject"] as const;
  readonly events = ["Error", "ObjectCreated", "ObjectDestroyed"] as const;
  readonly facts: ServerFacts;

  constructor(context: MediaServerContext, facts: ServerFacts) {
    super(context, SERVER_MANAGER_ID, undefined);
    this.facts = facts;
  }

  invoke(name: string, params: RawParams, caller?: Caller): unknown {
    return invokeOperation(SERVER_MANAGER_OPERATIONS, this, name, params, caller);
  }

  protected override dispose(): void {}
}

/**
 * KMS's module list, with the factories this server can create: the
 * filters only when GStreamer and their elements are installed (probed once),
 * so a client (the bridge) offers the hat only where it works.
 */
function serverInfo() {
  const support = filterSupport();
  const filters = [
    ...(support.faceOverlay ? ["FaceOverlayFilter"] : []),
    ...(support.gstreamerFilter ? ["GStreamerFilter"] : []),
  ];
  const factories: Record<string, string[]> = {
    core: ["MediaPipeline", "PassThrough"],
    // KMS lists RecorderEndpoint here too; the bridge offers recording only where it is listed.
    elements: ["WebRtcEndpoint", "RecorderEndpoint"],
    filters,
  };
  return {
    __module__: "kurento",
    __type__: "ServerInfo",
    version: REPORTED_VERSION,
    modules: Object.entries(factories).map(([name, names]) => ({
      __module__: "kurento",
      __type__: "ModuleInfo",
      version: REPORTED_VERSION,
      name,
      generationTime: "embedded",
      factories: names,
    })),
    type: "KMS",
    // "simulcast": publishers may send RID simulcast; WebRtcEndpoint.setVideoQuality picks a subscriber's layer.
    capabilities: ["transactions", "simulcast"],
  };
}

const SERVER_MANAGER_OPERATIONS = operationTable<ServerManager>(MEDIA_OBJECT_OPERATIONS, {
  getInfo: operation(noParams, () => serverInfo()),
  getPipelines: operation(noParams, (manager, _, caller) => manager.facts.pipelineIds(caller)),
  getSessions: operation(noParams, (manager, _, caller) => manager.facts.sessionIds(caller)),
  getMetadata: operation(noParams, () => ""),
  getCpuCount: operation(noParams, () => os.availableParallelism()),
  getUsedMemory: operation(noParams, () => Math.round(process.memoryUsage().rss / 1024)),
  getUsedCpu: operation(z.object({ interval: z.number().int().min(1).max(60_000) }), (_, { interval }) =>
    measureCpu(interval),
  ),
  getKmd: operation(z.object({ moduleName: z.string() }), (_, { moduleName }) => {
    throw new KurentoError(
      "MEDIA_OBJECT_OPERATION_NOT_SUPPORTED",
      `The embedded media server has no module descriptors (asked for "${moduleName}")`,
    );
  }),
});

/** Share of all cores used by this process over `intervalMs`, in percent, as KMS reports it. */
async function measureCpu(intervalMs: number): Promise<number> {
  const before = process.cpuUsage();
  const startedAt = process.hrtime.bigint();
  await new Promise((resolve) => setTimeout(resolve, intervalMs));
  const used = process.cpuUsage(before);
  const elapsedMicros = Number(process.hrtime.bigint() - startedAt) / 1000;
  return ((used.user + used.system) / elapsedMicros / os.availableParallelism()) * 100;
}
