import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Page } from "playwright-core";
import { iceCandidate, type KurentoWebRtcEndpoint } from "./kurento.ts";

/**
 * Browser-side helpers for the Chromium tests. The pages load a blank
 * document from 127.0.0.1 (a secure context, so getUserMedia works) and the
 * test drives each page's RTCPeerConnection with page.evaluate.
 */

export async function startBlankPageServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "text/html" });
    response.end("<!doctype html><html><head><title>media-server test</title></head><body></body></html>");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export type PageRole = "publish" | "subscribe" | "loopback";

/** Creates the page's peer connection and returns its offer. Candidates flow to the endpoint through an exposed function. */
export async function offerFromPage(page: Page, role: PageRole, endpoint: KurentoWebRtcEndpoint): Promise<string> {
  await page.exposeFunction(
    "sendCandidateToServer",
    (candidate: { candidate: string; sdpMid: string | null; sdpMLineIndex: number | null }) => {
      void endpoint.addIceCandidate(iceCandidate(candidate));
    },
  );
  endpoint.on("IceCandidateFound", (event) => {
    void page.evaluate(
      (candidate) => (window as unknown as TestWindow).pc.addIceCandidate(candidate),
      event.candidate as RTCIceCandidateInit,
    );
  });
  return page.evaluate(async (pageRole) => {
    const testWindow = window as unknown as TestWindow;
    const pc = new RTCPeerConnection({ iceServers: [] });
    testWindow.pc = pc;
    pc.onicecandidate = (event) => {
      if (event.candidate)
        void testWindow.sendCandidateToServer(
          event.candidate.toJSON() as { candidate: string; sdpMid: string | null; sdpMLineIndex: number | null },
        );
    };
    if (pageRole !== "subscribe") {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
      for (const track of stream.getTracks())
        pc.addTransceiver(track, { direction: pageRole === "loopback" ? "sendrecv" : "sendonly", streams: [stream] });
    } else {
      pc.addTransceiver("audio", { direction: "recvonly" });
      pc.addTransceiver("video", { direction: "recvonly" });
    }
    if (pageRole !== "publish") {
      // Chrome decodes received video only for a consumer; a playing <video> is one.
      pc.ontrack = (event) => {
        if (event.track.kind !== "video") return;
        const video = document.createElement("video");
        video.muted = true;
        video.autoplay = true;
        video.srcObject = new MediaStream([event.track]);
        document.body.append(video);
        void video.play().catch(() => {});
      };
    }
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    return offer.sdp ?? "";
  }, role);
}

export async function acceptAnswer(page: Page, answer: string): Promise<void> {
  await page.evaluate(
    (sdp) => (window as unknown as TestWindow).pc.setRemoteDescription({ type: "answer", sdp }),
    answer,
  );
}

export interface ReceivedMedia {
  framesDecoded: number;
  frameWidth: number;
  audioPacketsReceived: number;
  videoCodec: string;
  videoBytesReceived: number;
}

export async function receivedMedia(page: Page): Promise<ReceivedMedia> {
  return page.evaluate(async () => {
    const stats = await (window as unknown as TestWindow).pc.getStats();
    const result = { framesDecoded: 0, frameWidth: 0, audioPacketsReceived: 0, videoCodec: "", videoBytesReceived: 0 };
    const byId = new Map<string, Record<string, unknown>>();
    stats.forEach((report: Record<string, unknown>) => {
      byId.set(String(report.id), report);
    });
    byId.forEach((report) => {
      if (report.type !== "inbound-rtp") return;
      if (report.kind === "video") {
        result.framesDecoded = Number(report.framesDecoded ?? 0);
        result.frameWidth = Number(report.frameWidth ?? 0);
        result.videoBytesReceived = Number(report.bytesReceived ?? 0);
        const codec = byId.get(String(report.codecId));
        result.videoCodec = String(codec?.mimeType ?? "");
      }
      if (report.kind === "audio") result.audioPacketsReceived = Number(report.packetsReceived ?? 0);
    });
    return result;
  });
}

export async function closePagePeer(page: Page): Promise<void> {
  await page.evaluate(() => (window as unknown as TestWindow).pc?.close()).catch(() => {});
}

interface TestWindow {
  pc: RTCPeerConnection;
  sendCandidateToServer(candidate: {
    candidate: string;
    sdpMid: string | null;
    sdpMLineIndex: number | null;
  }): Promise<void>;
}
