import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { MEDIA_ELEMENT_OPERATIONS } from "../media-element.ts";
import type { MediaObject, MediaServerContext } from "../media-object.ts";
import { type Caller, invokeOperation, noParams, operation, operationTable, type RawParams } from "../operations.ts";
import { overlaySvg } from "./overlay-image.ts";
import { VideoFilter } from "./video-filter.ts";

/** Where the image goes and how big it is, as fractions of the detected face box (KMS's meaning). */
export interface OverlayGeometry {
  readonly offsetXPercent: number;
  readonly offsetYPercent: number;
  readonly widthPercent: number;
  readonly heightPercent: number;
}

const imageUri = z
  .string()
  .min(1)
  .max(8192)
  .transform((value, context) => {
    try {
      const url = new URL(value);
      if (["http:", "https:", "file:"].includes(url.protocol)) return url;
    } catch {
      // reported below
    }
    context.addIssue({ code: "custom", message: "must be an http://, https:// or file:// URI" });
    return z.NEVER;
  });
/** Offsets may be negative (the demo's hat sits above and left of the face box); sizes must be positive. */
const offset = z.number().finite().min(-100).max(100);
const size = z.number().finite().positive().max(100);

const setOverlayedImageParams = z.object({
  uri: imageUri,
  offsetXPercent: offset,
  offsetYPercent: offset,
  widthPercent: size,
  heightPercent: size,
});

/**
 * Kurento's FaceOverlayFilter: GStreamer's `faceoverlay` (OpenCV's Haar
 * face detector and an SVG overlay) places the image relative to the face
 * box: x = face.x + offsetXPercent × face.width, y = face.y +
 * offsetYPercent × face.height, width = widthPercent × face.width, height =
 * heightPercent × face.height, as KMS's own element does. Without an image
 * the video passes untouched.
 */
export class FaceOverlayFilter extends VideoFilter {
  readonly typeName = "FaceOverlayFilter";
  private imageDir: string | undefined;
  private overlay: { file: string; geometry: OverlayGeometry } | undefined;

  constructor(context: MediaServerContext, pipeline: MediaObject) {
    super(context, "FaceOverlayFilter", pipeline);
  }

  invoke(name: string, params: RawParams, caller?: Caller): unknown {
    return invokeOperation(FACE_OVERLAY_FILTER_OPERATIONS, this, name, params, caller);
  }

  async setOverlayedImage(uri: URL, geometry: OverlayGeometry): Promise<void> {
    const svg = await overlaySvg(uri);
    if (this.released) return;
    // A private folder per filter: the SVG may only reference files beside it (librsvg's rule), and there are none.
    this.imageDir ??= mkdtempSync(join(tmpdir(), "kms-face-overlay-"));
    const file = join(this.imageDir, "overlay.svg");
    writeFileSync(file, svg);
    this.overlay = { file, geometry };
    await this.reconfigure();
  }

  async unsetOverlayedImage(): Promise<void> {
    if (!this.overlay) return;
    this.overlay = undefined;
    await this.reconfigure();
  }

  protected filterElements(): readonly string[] | undefined {
    if (!this.overlay) return undefined;
    const { file, geometry } = this.overlay;
    return [
      "faceoverlay",
      `location="${file}"`,
      `x=${geometry.offsetXPercent}`,
      `y=${geometry.offsetYPercent}`,
      `w=${geometry.widthPercent}`,
      `h=${geometry.heightPercent}`,
    ];
  }

  protected override async dispose(): Promise<void> {
    await super.dispose();
    if (this.imageDir) rmSync(this.imageDir, { recursive: true, force: true });
  }
}

const FACE_OVERLAY_FILTER_OPERATIONS = operationTable<FaceOverlayFilter>(MEDIA_ELEMENT_OPERATIONS, {
  setOverlayedImage: operation(setOverlayedImageParams, (filter, { uri, ...geometry }) =>
    filter.setOverlayedImage(uri, geometry),
  ),
  unsetOverlayedImage: operation(noParams, (filter) => filter.unsetOverlayedImage()),
});
