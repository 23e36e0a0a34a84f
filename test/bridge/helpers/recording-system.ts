/**
 * A recording through the whole system, no browser: the worker under
 * `wrangler dev` (its R2 bucket simulated), the bridge, a media server. A
 * werift publisher (video only) joins a room and sends real VP8; the
 * administrator starts and stops the recording with the REST API; the file
 * comes back from the worker and is probed. Proves the bridge and the
 * worker agree on `record`/`stopRecording` and on the upload API. Shared by
 * the per-back-end tests in test/integration/bridge-recording-system*.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Recording, recording as recordingSchema } from "../../../protocol/recordings.ts";
import { startSystem } from "../../../scripts/system.ts";
import { RoomTestClient } from "../../helpers/room-client.ts";
import { waitUntil } from "./fake-worker.ts";
import { createClientPeer, stripCandidates } from "./peers.ts";
import { ffprobe, type Probe, sendVp8 } from "./recording-media.ts";

const ADMIN_TOKEN = "bridge-recording-system-admin";
const WAIT_MS = 60_000;

export interface SystemRun {
  /** From the REST start's answer to the REST stop's answer. */
  readonly wallMs: number;
  readonly recording: Recording;
  readonly probe: Probe;
  readonly bytes: number;
}

export async function recordThroughSystem(mediaBackend: "embedded" | "kms", seconds: number): Promise<SystemRun> {
  const system = await startSystem({
    mediaBackend,
    mediaServerWebrtc: { loopbackOnly: true },
    vars: { ADMIN_TOKEN },
  });
  const peer = createClientPeer();
  let media: ReturnType<typeof sendVp8> | undefined;
  let client: RoomTestClient | undefined;
  const scratch = mkdtempSync(join(tmpdir(), "bridge-recording-system-"));
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${system.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    });
  try {
    const room = "recorded";
    client = await RoomTestClient.connect(`${system.url.replace(/^http/, "ws")}/room/${room}`);
    const member = client;
    await member.request("joinRoom", { user: "alice", room });
    const video = peer.addTransceiver("video", { direction: "sendonly" });
    // The peer's candidates wait for the offer (the room knows no endpoint before it).
    const held: Array<Record<string, unknown>> = [];
    let offered = false;
    const send = (candidate: Record<string, unknown>): void => {
      void member.request("onIceCandidate", { endpointName: "alice", ...candidate }).catch(() => undefined);
    };
    peer.onIceCandidate.subscribe((candidate) => {
      if (!candidate) return;
      const init = candidate.toJSON();
      const entry = {
        candidate: init.candidate ?? "",
        sdpMid: init.sdpMid ?? null,
        sdpMLineIndex: init.sdpMLineIndex ?? 0,
      };
      if (offered) send(entry);
      else held.push(entry);
    });
    await peer.setLocalDescription(await peer.createOffer());
    const answer = member.request<{ sdpAnswer: string }>("publishVideo", {
      sdpOffer: stripCandidates(peer.localDescription?.sdp ?? ""),
      doLoopback: false,
    });
    offered = true;
    for (const candidate of held.splice(0)) send(candidate);
    await peer.setRemoteDescription({ type: "answer", sdp: (await answer).sdpAnswer });
    let feeding = true;
    void (async () => {
      while (feeding) {
        const params = await member.next("iceCandidate", 5000).catch(() => null);
        if (params?.endpointName !== "alice") continue;
        await peer
          .addIceCandidate({
            candidate: String(params.candidate),
            ...(typeof params.sdpMid === "string" ? { sdpMid: params.sdpMid } : {}),
            sdpMLineIndex: Number(params.sdpMLineIndex),
          })
          .catch(() => undefined);
      }
    })();
    await waitUntil(() => peer.connectionState === "connected", WAIT_MS, "the publisher's connection");
    feeding = false;
    media = sendVp8(video);
    await new Promise((resolve) => setTimeout(resolve, 1000));

    const started = await api("/api/recordings", { method: "POST", body: JSON.stringify({ room }) });
    const startedBody = (await started.json()) as { id?: string; error?: string };
    if (started.status !== 201 || !startedBody.id) {
      throw new Error(`the recording did not start: ${started.status} ${JSON.stringify(startedBody)}`);
    }
    const from = Date.now();
    const id = startedBody.id;
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const stopped = await api(`/api/recordings/${id}/stop`, { method: "POST" });
    const wallMs = Date.now() - from;
    if (!stopped.ok) throw new Error(`the recording did not stop: ${stopped.status} ${await stopped.text()}`);

    const recording = await waitUntil(
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 200));
        const found = recordingSchema.parse(await (await api(`/api/recordings/${id}`)).json());
        return found.status === "ready" || found.status === "failed" ? found : undefined;
      },
      WAIT_MS,
      "the recording to be ready",
    );
    const file = recording.files[0];
    if (recording.status !== "ready" || !file) {
      throw new Error(`the recording ended ${recording.status}: ${JSON.stringify(recording)}`);
    }
    const download = await api(`/api/recordings/${id}/files/${file.name}`);
    if (!download.ok) throw new Error(`download: ${download.status}`);
    const data = Buffer.from(await download.arrayBuffer());
    const path = join(scratch, file.name);
    writeFileSync(path, data);
    return { wallMs, recording, probe: ffprobe(path), bytes: data.length };
  } finally {
    media?.stop();
    await peer.close();
    client?.close();
    await system.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}
