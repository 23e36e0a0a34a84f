/**
 * The demo's entry point (bundled to web/dist/main.js). `window.kurentoDemo`
 * exposes the running app for debugging and for the browser tests.
 */
import { DemoApp } from "./app.ts";

declare global {
  interface Window {
    kurentoDemo?: DemoApp;
  }
}

const app = new DemoApp();
window.kurentoDemo = app;
app.start();
