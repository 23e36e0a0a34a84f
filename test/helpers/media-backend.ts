/**
 * The media server a back-end-parametrised test talks to: the embedded one
 * (project `integration`) or a real KMS from KMS_HOME (`integration-kms`),
 * as MEDIA_BACKEND names it, on loopback only. Not a test file.
 */
import { startMediaServer } from "../../media-server/index.ts";
import { kmsObjectCount, startKms } from "../../scripts/kms.ts";
import { type MediaBackend, mediaBackendFromEnv } from "../../scripts/system.ts";

export interface MediaBackendHandle {
  readonly backend: MediaBackend;
  /** The Kurento WebSocket URL. */
  readonly url: string;
  /** Media objects the server holds. KMS: counted over its own socket (KMS lists every session's pipelines); embedded: its stats. */
  objectCount(): Promise<number>;
  stop(): Promise<void>;
}

export async function startMediaBackend(backend: MediaBackend = mediaBackendFromEnv()): Promise<MediaBackendHandle> {
  if (backend === "kms") {
    const kms = await startKms({ loopbackOnly: true });
    return { backend, url: kms.url, objectCount: () => kmsObjectCount(kms.url), stop: () => kms.stop() };
  }
  const embedded = await startMediaServer({ port: 0, webrtc: { loopbackOnly: true }, log: () => {} });
  return {
    backend,
    url: embedded.url,
    objectCount: async () => embedded.stats().objects,
    stop: () => embedded.close(),
  };
}
