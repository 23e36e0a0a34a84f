/**
 * The demo's custom request, as in the original DemoJsonRpcUserControl:
 * `customRequest {hat: true|false}` puts a FaceOverlayFilter ("hat") on the
 * caller's published video or removes it.
 */
import { JsonRpcCode, RoomCode, rpcError } from "../../protocol/errors.ts";
import type { CustomRequestHandler } from "./hooks.ts";
import { publishState } from "./streams.ts";

const HAT = "hat";

export const hatFilterHandler: CustomRequestHandler = {
  handle({ participant, params }) {
    const hatOn = params[HAT];
    if (typeof hatOn !== "boolean") {
      return {
        error: rpcError(JsonRpcCode.INVALID_PARAMS, `Request element '${HAT}' is missing (expected true or false)`),
      };
    }
    const wearing = participant.attributes[HAT] === true;
    if (hatOn) {
      if (wearing) return { error: rpcError(RoomCode.USER_GENERIC, "Hat filter already on") };
      // The hat goes on the webcam (the face), never on a screen share.
      if (publishState(participant) !== "live") {
        return { error: rpcError(RoomCode.USER_NOT_STREAMING, "Publish your video before putting a hat on it") };
      }
      return {
        media: { op: "applyFilter", user: participant.user, filter: "hat" },
        data: true,
        undo: { op: "removeFilter", user: participant.user, filter: "hat" },
      };
    }
    if (!wearing) return { error: rpcError(RoomCode.USER_GENERIC, "This user has no hat filter yet") };
    return { media: { op: "removeFilter", user: participant.user, filter: "hat" }, data: false };
  },
  complete(participant, data) {
    return { ...participant.attributes, [HAT]: data };
  },
};
