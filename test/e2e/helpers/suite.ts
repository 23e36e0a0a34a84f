/**
 * The lifecycle every demo browser suite shares: build the web app, start the
 * whole stack (as npm start) behind a TCP proxy that can cut connections,
 * launch Chromium; after each test, leave properly (so media is released
 * before the next) and close the pages; at the end, stop everything.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll } from "vitest";
import { closeChromium } from "../../helpers/chromium.ts";
import { TcpProxy } from "../../web/helpers/tcp-proxy.ts";
import { buildWeb } from "./build.ts";
import { launch, openDemo } from "./demo.ts";
import { startStack, type Stack } from "./stack.ts";

export interface DemoSuite {
  readonly stack: Stack;
  readonly proxy: TcpProxy;
  readonly browser: Browser;
  /** A fresh demo page (on the worker, or on `url`), closed after the test. */
  page(url?: string): Promise<Page>;
  /** A room name no other test uses. */
  room(prefix: string): string;
  /** Closes a page the test opened itself along with the others, after the test. */
  closeAfterTest(page: Page): void;
}

/** Waits for `work` at most `limitMs`; says on stderr which step was slow and goes on. */
async function bounded(what: string, work: Promise<void>, limitMs: number): Promise<void> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), limitMs);
  });
  const outcome = await Promise.race([work.then(() => "done" as const), late]).finally(() => clearTimeout(timer));
  if (outcome === "late") process.stderr.write(`e2e suite: ${what} took over ${limitMs} ms; going on\n`);
  else if (Date.now() - started > limitMs / 3)
    process.stderr.write(`e2e suite: ${what} took ${Date.now() - started} ms\n`);
}

export function demoSuite(vars: Record<string, string>): DemoSuite {
  let stack: Stack | undefined;
  let proxy: TcpProxy | undefined;
  let browser: Browser | undefined;
  const pages: Page[] = [];
  let roomCounter = 0;
  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not started (used outside a test?)`);
    return value;
  };

  beforeAll(async () => {
    buildWeb();
    stack = await startStack({ vars });
    proxy = await TcpProxy.start(stack.port);
    browser = await launch();
  });

  afterEach(async () => {
    if (proxy) proxy.refusing = false;
    for (const opened of pages.splice(0)) {
      await opened
        .evaluate(() =>
          (window as unknown as { kurentoDemo: { room: { leave(): Promise<void> } | null } }).kurentoDemo.room?.leave(),
        )
        .catch(() => undefined);
      await opened.context().close();
    }
  });

  afterAll(async () => {
    // Each step bounded and named, so a slow one shows in the log and the rest still run.
    if (browser) await bounded("closing Chromium", closeChromium(browser), 15_000);
    if (proxy) await bounded("closing the proxy", proxy.close(), 15_000);
    if (stack) await bounded("stopping the stack", stack.stop(), 150_000);
  });

  return {
    get stack() {
      return need(stack, "the stack");
    },
    get proxy() {
      return need(proxy, "the proxy");
    },
    get browser() {
      return need(browser, "Chromium");
    },
    async page(url) {
      const opened = await openDemo(need(browser, "Chromium"), url ?? need(stack, "the stack").url);
      pages.push(opened);
      return opened;
    },
    room(prefix) {
      roomCounter += 1;
      return `${prefix}-${process.pid}-${roomCounter}`;
    },
    closeAfterTest(page) {
      pages.push(page);
    },
  };
}
