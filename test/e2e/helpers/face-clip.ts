/**
 * A fake camera that shows a real face: Chromium's
 * `--use-file-for-fake-video-capture` plays a .y4m clip made here with ffmpeg
 * from a real photograph packaged by Debian (scikit-image's sample
 * "astronaut", Eileen Collins, a public-domain NASA portrait). The photo is
 * cropped to her head and shoulders and set low in a grey 320×240 frame, so
 * the space above her head (where the hat goes) is plain backdrop and grey.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Where Debian's python3-skimage installs the photo. */
const DEBIAN_PATH = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png";

/** The photo: `FACE_IMAGE` (.ci/run extracts it from Debian's python3-skimage), else the installed package's. */
export function faceImage(): string {
  const candidates = [process.env.FACE_IMAGE, DEBIAN_PATH].filter((path): path is string => Boolean(path));
  const found = candidates.find((path) => existsSync(path));
  if (!found) {
    throw new Error(
      `no face photo: set FACE_IMAGE to scikit-image's astronaut.png, or apt-get install python3-skimage (looked at ${candidates.join(", ")})`,
    );
  }
  return found;
}

/**
 * Where the face is in the clip's frame, as fractions of its width and height
 * (measured on the frame ffmpeg makes: the face from the eyebrows to the
 * chin; her hair rises above it).
 */
export const FACE = { left: 0.37, right: 0.61, top: 0.42, bottom: 0.73 } as const;

/** Two seconds of the still photo at 15 fps (Chromium loops it), as a .y4m file in a new temporary folder. */
export function faceClip(): string {
  const dir = mkdtempSync(join(tmpdir(), "face-clip-"));
  const clip = join(dir, "face.y4m");
  execFileSync(
    "ffmpeg",
    [
      ...["-hide_banner", "-loglevel", "error", "-loop", "1", "-i", faceImage()],
      // 512×512 photo → her head and shoulders (256×256 from x=100), 192×192, low in a grey 320×240 frame.
      ...["-vf", "crop=256:256:100:0,scale=192:192,pad=320:240:64:48:color=0x808080,format=yuv420p"],
      ...["-r", "15", "-t", "2", "-f", "yuv4mpegpipe", clip],
    ],
    { stdio: ["ignore", "ignore", "pipe"], timeout: 60_000 },
  );
  return clip;
}
