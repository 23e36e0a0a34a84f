/**
 * Builds the browser side into web/dist (the worker's static assets):
 * copies web/public and bundles web/src entry points with esbuild.
 */
import { build } from "esbuild";
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";

const out = "web/dist";
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
cpSync("web/public", out, { recursive: true });

const entries = ["web/src/demo/main.ts"].filter((f) => existsSync(f));
if (entries.length > 0) {
  await build({
    entryPoints: entries,
    bundle: true,
    format: "esm",
    target: "es2022",
    sourcemap: true,
    minify: true,
    outdir: out,
    entryNames: "[name]",
    logLevel: "warning",
  });
}
console.log(`web built into ${out}`);
