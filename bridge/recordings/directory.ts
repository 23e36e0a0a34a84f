/**
 * RECORDINGS_DIR at start: created if missing, then checked writable. A
 * bridge that cannot write there registers `recording: false` and refuses
 * `record`, but runs everything else as usual.
 */
import { constants } from "node:fs";
import { access, mkdir } from "node:fs/promises";

export type DirectoryCheck = { readonly writable: true } | { readonly writable: false; readonly problem: string };

export async function prepareRecordingsDir(dir: string): Promise<DirectoryCheck> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK | constants.X_OK);
    return { writable: true };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { writable: false, problem: `RECORDINGS_DIR ${dir} is not a writable directory (${message})` };
  }
}
