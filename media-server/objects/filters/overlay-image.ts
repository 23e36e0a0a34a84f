/**
 * The image a FaceOverlayFilter puts over faces, fetched as KMS fetches it
 * (http(s):// or file://) and turned into what GStreamer's faceoverlay
 * draws: an SVG file. A PNG (or JPEG) is embedded in an SVG that stretches
 * it to the box, as KMS stretches its image to the box.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { KurentoError } from "../../errors.ts";

/** Larger images are refused: the hat is a small picture, and this bounds what a client can make the server load. */
const MAX_IMAGE_BYTES = 8 * 1024 * 1024;
const FETCH_TIMEOUT_MS = 15_000;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function imageError(uri: string, why: string): KurentoError {
  return new KurentoError("MEDIA_OBJECT_ILLEGAL_PARAM_ERROR", `Cannot use ${uri} as the overlay image: ${why}`);
}

async function download(uri: URL): Promise<Buffer> {
  if (uri.protocol === "file:") {
    const data = await readFile(fileURLToPath(uri)).catch((error: unknown) => {
      throw imageError(uri.href, error instanceof Error ? error.message : String(error));
    });
    if (data.length > MAX_IMAGE_BYTES) throw imageError(uri.href, `larger than ${MAX_IMAGE_BYTES} bytes`);
    return data;
  }
  let response: Response;
  try {
    response = await fetch(uri, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
    throw imageError(uri.href, `${error instanceof Error ? error.message : String(error)}${cause}`);
  }
  if (!response.ok) throw imageError(uri.href, `HTTP ${response.status}`);
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > MAX_IMAGE_BYTES) throw imageError(uri.href, `larger than ${MAX_IMAGE_BYTES} bytes`);
  const data = Buffer.from(await response.arrayBuffer());
  if (data.length > MAX_IMAGE_BYTES) throw imageError(uri.href, `larger than ${MAX_IMAGE_BYTES} bytes`);
  return data;
}

/** Width and height from a PNG's IHDR chunk (always the first, at byte 16). */
function pngSize(data: Buffer): { width: number; height: number } | undefined {
  if (data.length < 24 || !data.subarray(0, 8).equals(PNG_SIGNATURE)) return undefined;
  return { width: data.readUInt32BE(16), height: data.readUInt32BE(20) };
}

/** Width and height from a JPEG's first start-of-frame marker. */
function jpegSize(data: Buffer): { width: number; height: number } | undefined {
  if (data.length < 4 || data[0] !== 0xff || data[1] !== 0xd8) return undefined;
  let offset = 2;
  while (offset + 9 < data.length) {
    if (data[offset] !== 0xff) return undefined;
    const marker = data[offset + 1] ?? 0;
    const length = data.readUInt16BE(offset + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: data.readUInt16BE(offset + 5), width: data.readUInt16BE(offset + 7) };
    }
    offset += 2 + length;
  }
  return undefined;
}

function isSvg(data: Buffer): boolean {
  const head = data.subarray(0, 4096).toString("utf8");
  return /<svg[\s>]/i.test(head);
}

/** The SVG text faceoverlay draws for the image at `uri`; a clear 40107 when it cannot be fetched or is not PNG, JPEG or SVG. */
export async function overlaySvg(uri: URL): Promise<string> {
  const data = await download(uri);
  const png = pngSize(data);
  const jpeg = png ? undefined : jpegSize(data);
  const size = png ?? jpeg;
  if (size) {
    if (size.width === 0 || size.height === 0) throw imageError(uri.href, "the image is empty");
    const mime = png ? "image/png" : "image/jpeg";
    // preserveAspectRatio="none": the image fills the box faceoverlay gives it, whatever its proportions (KMS resizes it so).
    return (
      `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" ` +
      `width="${size.width}" height="${size.height}" viewBox="0 0 ${size.width} ${size.height}" preserveAspectRatio="none">` +
      `<image width="${size.width}" height="${size.height}" preserveAspectRatio="none" ` +
      `xlink:href="data:${mime};base64,${data.toString("base64")}"/></svg>`
    );
  }
  if (isSvg(data)) return data.toString("utf8");
  throw imageError(uri.href, "not a PNG, JPEG or SVG image");
}
