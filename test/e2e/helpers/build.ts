import { execFileSync } from "node:child_process";

/** Builds web/dist (as `npm run build:web`) so the worker serves the current demo. */
export function buildWeb(): void {
  execFileSync(process.execPath, ["scripts/build-web.ts"], { stdio: "pipe" });
}
