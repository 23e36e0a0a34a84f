import os from "node:os";
import { z } from "zod";
import { KurentoError } from "../errors.ts";
import { MediaObject, type MediaServerContext, noParams, type OperationTable, operation } from "./media-object.ts";

export const SERVER_MANAGER_ID = "manager_ServerManager";
const REPORTED_VERSION = "7.2.0";

/** Server-wide facts the manager reports; the server supplies them. */
export interface ServerFacts {
  sessionIds(): string[];
  pipelineIds(): string[];
}

/** The permanent `manager_ServerManager` object kurento-client asks for `getInfo` when it connects. */
export class ServerManager extends MediaObject {
  readonly typeName = "ServerManager";
  readonly hierarchy = ["kurento.MediaObject"] as const;
  readonly events = ["Error", "ObjectCreated", "ObjectDestroyed"] as const;
  private readonly facts: ServerFacts;

  constructor(context: MediaServerContext, facts: ServerFacts) {
    super(context, SERVER_MANAGER_ID, undefined);
    this.facts = facts;
  }

  override operations(): OperationTable {
    return {
      ...super.operations(),
      getInfo: operation("getInfo", noParams, () => ({
        __module__: "kurento",
        __type__: "ServerInfo",
        version: REPORTED_VERSION,
        modules: ["core", "elements", "filters"].map((name) => ({
          __module__: "kurento",
          __type__: "ModuleInfo",
          version: REPORTED_VERSION,
          name,
          generationTime: "embedded",
          factories: name === "core" ? ["MediaPipeline", "PassThrough"] : name === "elements" ? ["WebRtcEndpoint"] : [],
        })),
        type: "KMS",
        capabilities: ["transactions"],
      })),
      getPipelines: operation("getPipelines", noParams, () => this.facts.pipelineIds()),
      getSessions: operation("getSessions", noParams, () => this.facts.sessionIds()),
      getMetadata: operation("getMetadata", noParams, () => ""),
      getCpuCount: operation("getCpuCount", noParams, () => os.availableParallelism()),
      getUsedMemory: operation("getUsedMemory", noParams, () => Math.round(process.memoryUsage().rss / 1024)),
      getUsedCpu: operation("getUsedCpu", z.object({ interval: z.number().int().min(1).max(60_000) }), ({ interval }) => measureCpu(interval)),
      getKmd: operation("getKmd", z.object({ moduleName: z.string() }), ({ moduleName }) => {
        throw new KurentoError("MEDIA_OBJECT_OPERATION_NOT_SUPPORTED", `The embedded media server has no module descriptors (asked for "${moduleName}")`);
      }),
    };
  }

  protected override dispose(): void {}
}

/** Share of all cores used by this process over `intervalMs`, in percent, as KMS reports it. */
async function measureCpu(intervalMs: number): Promise<number> {
  const before = process.cpuUsage();
  const startedAt = process.hrtime.bigint();
  await new Promise((resolve) => setTimeout(resolve, intervalMs));
  const used = process.cpuUsage(before);
  const elapsedMicros = Number(process.hrtime.bigint() - startedAt) / 1000;
  return ((used.user + used.system) / elapsedMicros / os.availableParallelism()) * 100;
}
