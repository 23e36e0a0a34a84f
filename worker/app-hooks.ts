/**
 * The application's customisation of the room core (the SDK seams of
 * worker/core/hooks.ts), like the original demo's DemoJsonRpcUserControl and
 * KurentoClientProvider: edit this file, not the core.
 */
import { hatFilterHandler } from "./core/hat-filter.ts";
import type { RoomHooks } from "./core/hooks.ts";

export const appHooks: RoomHooks = {
  // The demo's custom request: `customRequest {hat: true|false}`.
  customRequest: hatFilterHandler,
  // authorizeJoin: ({ user, room, creating }) => null,  // e.g. allow-lists, quotas
  // observe: (room, effect) => { ... },                  // e.g. analytics of joins and leaves
};
