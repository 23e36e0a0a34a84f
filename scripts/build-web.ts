/**
 * Builds the browser side into web/dist (the worker's static assets):
 * copies web/public and bundles with esbuild
 *   web/src/demo/main.ts    → web/dist/main.js          (the demo app)
 *   web/src/client/index.ts → web/dist/kurento-room.js  (the client library, ESM)
 */
import { build, type Plugin } from "esbuild";
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";

const out = "web/dist";
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
cpSync("web/public", out, { recursive: true });

/**
 * zod re-exports every translation of its error messages as `z.locales`; a
 * namespace re-export defeats tree shaking (≈ 300 kB). Nothing here uses
 * them (English stays: zod configures it directly), so they become empty.
 */
const withoutZodLocales: Plugin = {
  name: "without-zod-locales",
  setup(b) {
    b.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: "zod-locales", namespace: "empty" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "empty" }, () => ({ contents: "export {};", loader: "js" }));
  },
};

const candidates: Record<string, string> = {
  main: "web/src/demo/main.ts",
  "kurento-room": "web/src/client/index.ts",
};
const entryPoints = Object.fromEntries(Object.entries(candidates).filter(([, file]) => existsSync(file)));
if (Object.keys(entryPoints).length > 0) {
  await build({
    entryPoints,
    bundle: true,
    format: "esm",
    target: "es2022",
    platform: "browser",
    sourcemap: true,
    minify: true,
    outdir: out,
    logLevel: "warning",
    plugins: [withoutZodLocales],
  });
}
console.log(`web built into ${out}`);
