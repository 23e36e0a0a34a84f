/**
 * Import boundaries between the processes of this project (checked by
 * `npm run lint:boundaries`, part of `npm test`):
 *
 *   protocol/      → zod only (no Node, DOM or workers modules)
 *   worker/        → protocol/
 *   bridge/        → protocol/
 *   media-server/  → nothing of ours outside media-server/
 *   web/           → protocol/
 *   scripts/, test/ may import everything
 *
 * and only the bridge's adapter loads `kurento-client` (tests that drive a
 * media server with the real client load it through one helper).
 */
const KURENTO_ADAPTER = "^bridge/media/kurento-adapter\\.ts$";
const KURENTO_TEST_LOADERS = "^test/(media-server/helpers/kurento|bench/bridge)\\.ts$";

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "protocol-imports-only-zod",
      comment: "protocol/ is the contract between processes: it may import zod and its own files, nothing else.",
      severity: "error",
      from: { path: "^protocol/" },
      to: { pathNot: ["^protocol/", "^node_modules/zod/"] },
    },
    {
      name: "worker-imports-only-protocol",
      severity: "error",
      from: { path: "^worker/" },
      to: { path: "^(bridge|media-server|web|scripts|test|packages)/" },
    },
    {
      name: "bridge-imports-only-protocol",
      severity: "error",
      from: { path: "^bridge/" },
      to: { path: "^(worker|media-server|web|scripts|test)/" },
    },
    {
      name: "media-server-imports-nothing-of-ours",
      severity: "error",
      from: { path: "^media-server/" },
      to: { path: "^(protocol|worker|bridge|web|scripts|test|packages)/" },
    },
    {
      name: "web-imports-only-protocol",
      severity: "error",
      from: { path: "^web/" },
      to: { path: "^(worker|bridge|media-server|scripts|test|packages)/" },
    },
    {
      name: "kurento-client-only-in-the-adapter",
      comment: "One adapter wraps kurento-client behind the bridge's MediaServer interface.",
      severity: "error",
      from: { pathNot: [KURENTO_ADAPTER, KURENTO_TEST_LOADERS] },
      to: { path: "^node_modules/kurento-client/" },
    },
    {
      name: "no-circular",
      comment: "Type-only cycles (an Env naming the Durable Object classes it binds) cost nothing at run time.",
      severity: "error",
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ["type-only"] } },
    },
    {
      name: "not-to-unresolvable",
      severity: "error",
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(web/dist|\\.wrangler|test-artifacts)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.node.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      extensions: [".ts", ".js", ".cjs", ".mjs", ".d.ts"],
    },
    builtInModules: { add: ["cloudflare:workers", "cloudflare:test"] },
  },
};
