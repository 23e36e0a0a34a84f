/**
 * The client library's tests (test/web: Node + the real worker) and the
 * browser end-to-end tests (test/e2e: real Chromium + the real stack), run
 * with `npm exec -- vitest run --config test/e2e/vitest.e2e.config.ts`
 * until these projects join vitest.config.ts.
 */
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    root: fileURLToPath(new URL("../..", import.meta.url)),
    // Each file starts real servers and browsers: one file at a time across both projects.
    fileParallelism: false,
    projects: [
      {
        test: {
          name: "web",
          root: fileURLToPath(new URL("../..", import.meta.url)),
          include: ["test/web/**/*.test.ts"],
          environment: "node",
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: "e2e",
          root: fileURLToPath(new URL("../..", import.meta.url)),
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
