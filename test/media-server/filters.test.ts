/**
 * The embedded media server's filters, through the real kurento-client:
 * FaceOverlayFilter (GStreamer's faceoverlay) and GStreamerFilter, each a
 * gst-launch-1.0 child process. Needs the GStreamer packages (.ci/run
 * installs them; README says which): without them the server reports no
 * filters, and the first test says so instead of skipping.
 *
 * Real VP8 from a real face photograph goes publisher → WebRtcEndpoint →
 * filter → PassThrough → WebRtcEndpoint → subscriber, as the bridge builds
 * it for the demo's hat; the subscriber's frames are decoded with ffmpeg and
 * compared with the decoded input.
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { RTCPeerConnection } from "werift";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type MediaServerHandle, startMediaServer } from "../../media-server/index.ts";
import {
  type Box,
  changedBox,
  changedMask,
  faceClip,
  freshPicture,
  meanDifference,
  mirrored,
  type Picture,
  publisherPeer,
  savePicture,
  sendVp8,
  subscriberPeer,
  vp8Sender,
} from "./helpers/filter-media.ts";
import {
  connectKurento,
  type KurentoClient,
  type KurentoMediaElement,
  type KurentoPipeline,
  type KurentoWebRtcEndpoint,
} from "./helpers/kurento.ts";
import { waitFor } from "./helpers/werift-peer.ts";

/** Bound of every wait: it only guards against a hang on a loaded machine. */
const WAIT_MS = 60_000;
const HAT_PNG = new URL("../../web/public/img/mario-wings.png", import.meta.url);
/** The demo's hat geometry (bridge/config.ts DEFAULT_HAT): relative to the face box. */
const HAT = { offsetXPercent: -0.35, offsetYPercent: -1.2, widthPercent: 1.6, heightPercent: 1.6 } as const;
/** Codec noise: the mean per-channel difference of a re-encoded picture (measured ≈ 1–3); a hat or a mirror is far more. */
const NOISE = 6;

let server: MediaServerHandle;
let client: KurentoClient;
let http: Server;
let httpBase: string;
let scratch: string;
const peers: RTCPeerConnection[] = [];
const made: KurentoPipeline[] = [];
const errors: string[] = [];
let face: { frames: Buffer[]; reference: Picture };

beforeAll(async () => {
  server = await startMediaServer({
    port: 0,
    webrtc: { loopbackOnly: true },
    sessionGraceMs: 500,
    log: (line) => errors.push(line),
  });
  client = await connectKurento(server.url);
  face = faceClip(640, 480);
  scratch = mkdtempSync(join(tmpdir(), "filters-test-"));
  // The hat as the bridge serves it: over HTTP on 127.0.0.1.
  http = createServer((request, response) => {
    if (request.url === "/hat.png") {
      response.writeHead(200, { "content-type": "image/png" });
      response.end(readFileSync(HAT_PNG));
    } else {
      response.writeHead(404);
      response.end();
    }
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  httpBase = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterEach(async () => {
  await Promise.all(peers.splice(0).map((peer) => peer.close()));
  for (const pipeline of made.splice(0)) await call(pipeline, "release").catch(() => undefined);
});

afterAll(async () => {
  client?.close();
  await server?.close();
  if (http) {
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** A kurento-client call in callback form (its promise form resolves even on failure), as a promise. */
function call<T = unknown>(target: object, method: string, ...args: unknown[]): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const fn = (target as Record<string, unknown>)[method];
    if (typeof fn !== "function") throw new Error(`${method} is not a kurento-client method`);
    fn.call(target, ...args, (error: unknown, result: T) => (error ? reject(error) : resolve(result)));
  });
}

async function failure(promise: Promise<unknown>): Promise<{ code: unknown; type: unknown; message: string }> {
  try {
    await promise;
  } catch (error) {
    const shape = error as { code?: unknown; data?: { type?: unknown }; message?: unknown };
    return { code: shape.code, type: shape.data?.type, message: String(shape.message ?? "") };
  }
  throw new Error("the call succeeded; a failure was expected");
}

async function newPipeline(): Promise<KurentoPipeline> {
  const pipeline = await call<KurentoPipeline>(client, "create", "MediaPipeline");
  made.push(pipeline);
  return pipeline;
}

/** gst-launch-1.0 processes that are children of this process (the media server runs in it). */
function gstChildren(): number[] {
  let out = "";
  try {
    out = execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)], { encoding: "utf8" });
  } catch {
    return []; // ps exits 1 when there are no children at all
  }
  return out
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([, comm]) => comm === "gst-launch-1.0")
    .map(([pid]) => Number(pid));
}

interface Chain {
  filter: KurentoMediaElement;
  subscriber: Awaited<ReturnType<typeof subscriberPeer>>;
  media: ReturnType<typeof sendVp8>;
}

/** publisher → WebRtcEndpoint → filter → PassThrough → WebRtcEndpoint → subscriber, the bridge's hat graph. */
async function chain(type: string, params: Record<string, unknown>, frames = face.frames): Promise<Chain> {
  const pipeline = await newPipeline();
  const publisherEndpoint = await call<KurentoWebRtcEndpoint>(pipeline, "create", "WebRtcEndpoint", {});
  const filter = await call<KurentoMediaElement>(pipeline, "create", type, params);
  const passThrough = await call<KurentoMediaElement>(pipeline, "create", "PassThrough", {});
  const subscriberEndpoint = await call<KurentoWebRtcEndpoint>(pipeline, "create", "WebRtcEndpoint", {});
  await call(publisherEndpoint, "connect", filter);
  await call(filter, "connect", passThrough);
  await call(passThrough, "connect", subscriberEndpoint);
  const publisher = await publisherPeer(publisherEndpoint);
  const subscriber = await subscriberPeer(subscriberEndpoint);
  peers.push(publisher.peer, subscriber.peer);
  const media = sendVp8(vp8Sender(publisher.video), frames);
  await waitFor(() => subscriber.frames.length > 0, WAIT_MS, "video at the subscriber");
  return { filter, subscriber, media };
}

/** A picture that settled: two in a row alike (a filter just started shows its first frames, then the steady ones). */
async function steadyPicture(
  subscriber: Chain["subscriber"],
  settled: (picture: Picture) => boolean,
): Promise<Picture> {
  let last: Picture | undefined;
  await waitFor(
    async () => {
      last = await freshPicture(subscriber, WAIT_MS);
      return settled(last);
    },
    WAIT_MS,
    "the expected picture at the subscriber",
  );
  if (!last) throw new Error("no picture");
  return last;
}

function hatBox(picture: Picture): Box | undefined {
  return changedBox(changedMask(picture, face.reference), picture.width, picture.height);
}

/** Where the face is in the 640×480 clip (measured on the photo: eyebrows to chin, ear to ear). */
const FACE_BOX = { left: 0.37, right: 0.61, top: 0.42, bottom: 0.73 } as const;

describe("filters on the embedded media server (GStreamer)", () => {
  it("getInfo lists FaceOverlayFilter and GStreamerFilter in the filters module (GStreamer is installed here); both create and describe as kurento.Filter", async () => {
    const manager = await client.getServerManager();
    const info = await manager.getInfo();
    const filters = (info.modules as Array<{ name: string; factories: string[] }>).find(
      (module) => module.name === "filters",
    );
    // Installed by .ci/run (gstreamer1.0-plugins-bad, gstreamer1.0-opencv, opencv-data, …): a machine without them fails here, loudly.
    expect(filters?.factories).toEqual(["FaceOverlayFilter", "GStreamerFilter"]);
    const pipeline = await newPipeline();
    const overlay = await call<KurentoMediaElement>(pipeline, "create", "FaceOverlayFilter", {});
    expect(overlay.id).toMatch(/\/[0-9a-f-]{36}_kurento\.FaceOverlayFilter$/);
    const flip = await call<KurentoMediaElement>(pipeline, "create", "GStreamerFilter", {
      command: "videoflip method=horizontal-flip",
    });
    expect(await call(flip, "getCommand")).toBe("videoflip method=horizontal-flip");
    expect(flip.id).toMatch(/_kurento\.GStreamerFilter$/);
  });

  it("setOverlayedImage validates its arguments: -32602 naming the field for a bad URI scheme, a missing or non-number offset, a size ≤ 0; 40107 for an image it cannot fetch or read", async () => {
    const pipeline = await newPipeline();
    const filter = await call<KurentoMediaElement>(pipeline, "create", "FaceOverlayFilter", {});
    const { offsetXPercent, offsetYPercent, widthPercent, heightPercent } = HAT;
    const set = (uri: string, x: number, y: number, w: number, h: number) =>
      failure(call(filter, "setOverlayedImage", uri, x, y, w, h));
    for (const uri of ["ftp://127.0.0.1/hat.png", "not a uri", "javascript:alert(1)"]) {
      expect(await set(uri, offsetXPercent, offsetYPercent, widthPercent, heightPercent)).toMatchObject({
        code: -32602,
        message: expect.stringContaining("uri"),
      });
    }
    expect(await set(`${httpBase}/hat.png`, offsetXPercent, offsetYPercent, 0, heightPercent)).toMatchObject({
      code: -32602,
      message: expect.stringContaining("widthPercent"),
    });
    expect(await set(`${httpBase}/hat.png`, offsetXPercent, offsetYPercent, widthPercent, -1)).toMatchObject({
      code: -32602,
      message: expect.stringContaining("heightPercent"),
    });
    // Reachable but not there, unreachable, not an image: 40107 saying why.
    expect(
      await set(`${httpBase}/missing.png`, offsetXPercent, offsetYPercent, widthPercent, heightPercent),
    ).toMatchObject({
      code: 40107,
      message: expect.stringContaining("HTTP 404"),
    });
    const notImage = join(scratch, "not-an-image.txt");
    writeFileSync(notImage, "hello");
    expect(
      await set(pathToFileURL(notImage).href, offsetXPercent, offsetYPercent, widthPercent, heightPercent),
    ).toMatchObject({ code: 40107, message: expect.stringContaining("not a PNG, JPEG or SVG") });
    expect(
      await set(
        pathToFileURL(join(scratch, "absent.png")).href,
        offsetXPercent,
        offsetYPercent,
        widthPercent,
        heightPercent,
      ),
    ).toMatchObject({ code: 40107 });
    // Nothing was started for any of these.
    expect(gstChildren()).toEqual([]);
    await call(filter, "unsetOverlayedImage");
  });

  it("GStreamerFilter refuses what KMS 7.2 refuses, with its 40001 MARSHALL_ERROR texts: sources, sinks, file and network elements, several elements (chained, unlinked, bins), syntax errors, unknown elements and properties; and beyond KMS file properties and audio elements", async () => {
    const pipeline = await newPipeline();
    const refused = async (command: string, text: string) => {
      const error = await failure(call(pipeline, "create", "GStreamerFilter", { command }));
      expect({ command, ...error }).toMatchObject({
        command,
        code: 40001,
        type: "MARSHALL_ERROR",
        message: expect.stringContaining(text),
      });
    };
    const PADS = "Given command is not valid, pad templates don't match";
    const ONE = "Given command is not valid, only one element can be created";
    await refused("videotestsrc", PADS);
    await refused("fakesink", PADS);
    await refused("filesrc location=/etc/passwd", PADS);
    await refused("filesink location=/tmp/x", PADS);
    await refused("udpsink host=127.0.0.1 port=9", PADS);
    await refused("udpsrc port=5000", PADS);
    await refused("tcpserversink", PADS);
    await refused("videoflip videobalance", ONE);
    await refused("videoflip ! videobalance", ONE);
    await refused("( videoflip )", ONE);
    await refused("faceoverlay", ONE);
    await refused("videoflip name=a a. ! videobalance", ONE);
    await refused("", "GStreamer element cannot be created: empty pipeline not allowed");
    await refused("nosuchelement", 'GStreamer element cannot be created: no element "nosuchelement"');
    await refused("videoflip nosuchprop=1", 'no property "nosuchprop" in element "videoflip"');
    await refused('videoflip method="horizontal-flip', "unterminated quote");
    await refused("videoflip method=", "GStreamer element cannot be created");
    await refused("rsvgoverlay location=/etc/passwd", "names a file");
    await refused("facedetect profile=/etc/passwd", "names a file");
    await refused("audioconvert", "filters video only");
    expect(gstChildren()).toEqual([]);
  });

  it("FaceOverlayFilter between the publisher's endpoint and its PassThrough: without an image the video passes untouched; with the demo's hat (HTTP PNG) the picture changes only above the face; unsetOverlayedImage takes it off; release leaves no GStreamer process", async () => {
    const { filter, subscriber, media } = await chain("FaceOverlayFilter", {});
    try {
      const plain = await freshPicture(subscriber, WAIT_MS);
      expect(plain.width).toBe(640);
      expect(meanDifference(plain, face.reference)).toBeLessThan(NOISE);
      expect(gstChildren()).toEqual([]);

      await call(filter, "setOverlayedImage", `${httpBase}/hat.png`, ...Object.values(HAT));
      expect(gstChildren()).toHaveLength(1);
      const withHat = await steadyPicture(subscriber, (picture) => (hatBox(picture)?.share ?? 0) > 0.02);
      savePicture(withHat, join(scratch, "hat.ppm"));
      const box = hatBox(withHat);
      if (!box) throw new Error("no hat");
      // Above the face: it ends near the eyebrows and starts well above them; centred on the face.
      const faceTop = FACE_BOX.top * 480;
      const faceCentre = ((FACE_BOX.left + FACE_BOX.right) / 2) * 640;
      expect(box.bottom).toBeLessThan(faceTop + 0.1 * 480);
      expect(box.top).toBeLessThan(faceTop - 0.2 * 480);
      expect(Math.abs((box.left + box.right) / 2 - faceCentre)).toBeLessThan(0.08 * 640);
      // Elsewhere (below the eyebrows) it is the input, within codec noise.
      const below = Math.ceil(box.bottom + 2);
      const rows = (picture: Picture) => ({
        ...picture,
        height: picture.height - below,
        rgb: picture.rgb.subarray(below * picture.width * 3),
      });
      expect(meanDifference(rows(withHat), rows(face.reference))).toBeLessThan(NOISE);

      await call(filter, "unsetOverlayedImage");
      await waitFor(() => gstChildren().length === 0, WAIT_MS, "the GStreamer process to end after unset");
      await steadyPicture(subscriber, (picture) => meanDifference(picture, face.reference) < NOISE);

      // file:// PNG and an SVG (the PNG wrapped, as a client might serve it) work the same.
      const svg = join(scratch, "hat.svg");
      writeFileSync(
        svg,
        `<svg xmlns="http://www.w3.org/2000/svg" width="100" height="60"><rect width="100" height="60" fill="#00ff00"/></svg>`,
      );
      await call(filter, "setOverlayedImage", pathToFileURL(svg).href, ...Object.values(HAT));
      const green = await steadyPicture(subscriber, (picture) => (hatBox(picture)?.share ?? 0) > 0.02);
      const greenBox = hatBox(green);
      // The same box as the PNG hat (the geometry is the face box's, whatever the image): the opaque
      // rectangle fills it, the hat's visible parts lie inside it (its corners are transparent).
      if (!greenBox) throw new Error("no SVG overlay");
      const margin = 6;
      expect(greenBox.top).toBeLessThanOrEqual(box.top + margin);
      expect(greenBox.left).toBeLessThanOrEqual(box.left + margin);
      expect(greenBox.right).toBeGreaterThanOrEqual(box.right - margin);
      expect(greenBox.bottom).toBeGreaterThanOrEqual(box.bottom - margin);
      await call(filter, "setOverlayedImage", pathToFileURL(HAT_PNG.pathname).href, ...Object.values(HAT));
      await steadyPicture(subscriber, (picture) => (hatBox(picture)?.share ?? 0) > 0.02);
    } finally {
      media.stop();
    }
    expect(gstChildren()).toHaveLength(1);
    await call(filter, "release");
    expect(gstChildren()).toEqual([]);
  });

  it("FaceOverlayFilter without a face in the picture: the frame passes through (decoded and encoded again, no overlay)", async () => {
    // A uniform grey picture: nothing a face detector could take for a face.
    const grey = { ...face.reference, rgb: Buffer.alloc(face.reference.rgb.length, 0x80) };
    const frames = greyFrames();
    const { filter, subscriber, media } = await chain("FaceOverlayFilter", {}, frames);
    try {
      await call(filter, "setOverlayedImage", `${httpBase}/hat.png`, ...Object.values(HAT));
      const picture = await freshPicture(subscriber, WAIT_MS);
      await freshPicture(subscriber, WAIT_MS);
      expect(meanDifference(picture, grey)).toBeLessThan(NOISE);
    } finally {
      media.stop();
    }
  });

  it("GStreamerFilter videoflip method=horizontal-flip: the subscriber sees the picture mirrored; a keyframe request from the subscriber reaches the filter's encoder", async () => {
    const { filter, subscriber, media } = await chain("GStreamerFilter", {
      command: "videoflip method=horizontal-flip",
    });
    try {
      const target = mirrored(face.reference);
      // freshPicture asks for a keyframe with a PLI: the filter's encoder (keyframes otherwise every 3000 frames) answers it.
      const picture = await steadyPicture(subscriber, (candidate) => meanDifference(candidate, target) < NOISE);
      expect(meanDifference(picture, face.reference)).toBeGreaterThan(NOISE * 2);
      const keyframes = subscriber.frames.filter((frame) => frame.keyframe).length;
      await freshPicture(subscriber, WAIT_MS);
      expect(subscriber.frames.filter((frame) => frame.keyframe).length).toBeGreaterThan(keyframes);
    } finally {
      media.stop();
    }
    await call(filter, "release");
    expect(gstChildren()).toEqual([]);
  });

  it("a GStreamer process that dies is reported (an Error event) and restarted, and the picture comes back; closing the server ends every filter process", async () => {
    const { filter, subscriber, media } = await chain("GStreamerFilter", {
      command: "videoflip method=horizontal-flip",
    });
    const events: Array<Record<string, unknown>> = [];
    filter.on("Error", (event) => events.push(event));
    try {
      const target = mirrored(face.reference);
      await steadyPicture(subscriber, (candidate) => meanDifference(candidate, target) < NOISE);
      const [pid] = gstChildren();
      if (pid === undefined) throw new Error("no GStreamer process");
      // Our own child, by its pid.
      process.kill(pid, "SIGKILL");
      await waitFor(() => events.length > 0, WAIT_MS, "an Error event");
      expect(events[0]).toMatchObject({ type: "GSTREAMER_PIPELINE_CRASHED" });
      expect(String(events[0]?.description)).toContain("SIGKILL");
      await waitFor(() => gstChildren().some((other) => other !== pid), WAIT_MS, "a new GStreamer process");
      await steadyPicture(subscriber, (candidate) => meanDifference(candidate, target) < NOISE);
    } finally {
      media.stop();
    }
    // A second server with a filter, closed: its process ends with it.
    const other = await startMediaServer({ port: 0, webrtc: { loopbackOnly: true }, log: () => {} });
    const otherClient = await connectKurento(other.url);
    const pipeline = await call<KurentoPipeline>(otherClient, "create", "MediaPipeline");
    await call(pipeline, "create", "GStreamerFilter", { command: "videobalance saturation=0" });
    const before = gstChildren().length;
    otherClient.close();
    await other.close();
    await waitFor(() => gstChildren().length === before - 1, WAIT_MS, "the closed server's filter process to end");
  });

  it("a server process killed with SIGKILL (no cleanup runs) leaves no GStreamer process: its pipe closes, the pipeline ends", async () => {
    const child = spawn(process.execPath, [fileURLToPath(new URL("./helpers/filter-child.ts", import.meta.url))], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let printed = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (text: string) => {
      printed += text;
    });
    await waitFor(() => printed.includes("\n"), WAIT_MS, "the child to start its pipeline");
    const gstPid = Number(printed.trim());
    expect(gstPid).toBeGreaterThan(0);
    expect(gone(gstPid)).toBe(false);
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    await waitFor(() => gone(gstPid), WAIT_MS, "the orphaned GStreamer process to end");
  });
});

/** Whether a process is gone (or a zombie nobody has reaped yet, which runs nothing). */
function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") ?? true;
  } catch {
    return true;
  }
}

/** One second of a uniform grey 640×480 picture as VP8 (no face anywhere). */
function greyFrames(): Buffer[] {
  const dir = mkdtempSync(join(tmpdir(), "grey-vp8-"));
  try {
    const file = join(dir, "grey.ivf");
    execFileSync(
      "ffmpeg",
      [
        ...["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=0x808080:size=640x480:rate=15"],
        ...["-t", "1", "-c:v", "libvpx", "-deadline", "realtime", "-g", "5", "-b:v", "500k", file],
      ],
      { stdio: ["ignore", "ignore", "pipe"], timeout: 60_000 },
    );
    const ivf = readFileSync(file);
    const frames: Buffer[] = [];
    let offset = ivf.readUInt16LE(6);
    while (offset + 12 <= ivf.length) {
      const size = ivf.readUInt32LE(offset);
      frames.push(ivf.subarray(offset + 12, offset + 12 + size));
      offset += 12 + size;
    }
    return frames;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
