import { existsSync } from "node:fs";
import { type Browser, type BrowserContext, chromium } from "playwright-core";

/** Debian's package (`apt-get install chromium`); never a Playwright download (the machine reaches only the npm and Debian registries). */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/**
 * Flags: fake camera and microphone without a permission prompt, a fake
 * screen picked for getDisplayMedia without asking, no background traffic;
 * plus what WebRTC on 127.0.0.1 needs (loopback candidates, real IPs
 * instead of mDNS names).
 */
export const CHROMIUM_ARGS: readonly string[] = [
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--auto-select-desktop-capture-source=Entire screen",
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--allow-loopback-in-peer-connection",
  "--disable-features=WebRtcHideLocalIpsWithMdns",
];

export interface LaunchOptions {
  /** More command-line switches, e.g. `--use-file-for-fake-video-capture=…`. */
  extraArgs?: string[];
  /** Bound of one launch attempt in ms (default 60 s, and one retry: on two busy cores a start has taken over 30 s). */
  timeout?: number;
}

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM_PATH);
}

/**
 * Headless Debian Chromium driven by playwright-core. Playwright gives every
 * launch a fresh temporary `--user-data-dir` and deletes it on close, so no
 * state leaks between runs; each `newContext()` is a further isolated profile.
 */
export async function launchChromium(options: LaunchOptions = {}): Promise<Browser> {
  if (!chromiumAvailable()) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: install the Debian package (apt-get install -y chromium) or set CHROMIUM_PATH`,
    );
  }
  const launch = (): Promise<Browser> =>
    chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS, ...(options.extraArgs ?? [])],
      timeout: options.timeout ?? 60_000,
    });
  try {
    return await launch();
  } catch (error) {
    // A start that timed out is killed by Playwright; one more attempt, so a
    // burst of load on the machine is not a failed test file.
    if (!(error instanceof Error) || error.name !== "TimeoutError") throw error;
    process.stderr.write(`Chromium did not start in time (${error.message.split("\n")[0]}); trying once more\n`);
    return launch();
  }
}

/** The fake camera's size: `ideal` lets Chromium pick another, `exact` forces it. */
export interface CameraSize {
  readonly width: number;
  readonly height: number;
  readonly exact?: boolean;
}

/**
 * A context that may use camera and microphone. Several pages share two
 * cores with the media server: by default the fake camera is capped at
 * 320×240, 15 fps (real capture and encoding, a quarter of the pixels), so a
 * page's video is late because of the system under test, not the CPU.
 */
export async function mediaContext(
  browser: Browser,
  camera: CameraSize = { width: 320, height: 240 },
): Promise<BrowserContext> {
  const context = await browser.newContext({ permissions: ["camera", "microphone"] });
  await context.addInitScript((size: CameraSize) => {
    const devices = navigator.mediaDevices;
    if (!devices?.getUserMedia) return;
    const original = devices.getUserMedia.bind(devices);
    const dimension = (value: number) => (size.exact ? { exact: value } : { ideal: value });
    devices.getUserMedia = (constraints?: MediaStreamConstraints) => {
      if (!constraints?.video) return original(constraints);
      const base = typeof constraints.video === "object" ? constraints.video : {};
      return original({
        ...constraints,
        video: { ...base, width: dimension(size.width), height: dimension(size.height), frameRate: { ideal: 15 } },
      });
    };
  }, camera);
  return context;
}

/** Closes the browser, giving up after `timeoutMs` so a hung Chromium cannot hang a test run. */
export async function closeChromium(browser: Browser, timeoutMs = 10_000): Promise<void> {
  await Promise.race([browser.close(), new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref())]);
}
