/**
 * The hat: a FaceOverlayFilter inserted into a publisher's chain between the
 * last element and its PassThrough (and taken out again), without a gap for
 * the subscribers.
 */
import type { FilterName, MediaEvent, MediaResult } from "../../protocol/bridge.ts";
import { RoomCode, rpcError } from "../../protocol/errors.ts";
import { streamIdOf } from "../../protocol/room.ts";
import { RpcRequestError } from "../../protocol/rpc-peer.ts";
import type { HatConfig } from "../config.ts";
import type { KmsSlot } from "./kms-pool.ts";
import { type MediaElement, MediaServerError, type Pipeline } from "./media-server.ts";
import { endpointError } from "./room-errors.ts";
import type { Publisher, RoomGraph } from "./room-graph.ts";

export interface FilterContext {
  readonly graph: RoomGraph;
  readonly hat: HatConfig;
  /** The room's pipeline and the KMS it is on, when there is one. */
  readonly placement: () => { readonly slot: KmsSlot; readonly pipeline: Pipeline } | null;
  /** A check that throws once the room's media was released after this call, or `stillCurrent` fails. */
  readonly guard: () => (stillCurrent?: () => boolean) => void;
  readonly emit: (event: MediaEvent) => void;
}

export async function applyFilter(
  context: FilterContext,
  user: string,
  filter: FilterName,
): Promise<MediaResult<"applyFilter">> {
  const { graph, hat } = context;
  const publisher = graph.publishers.get(streamIdOf(user));
  if (!publisher) throw endpointError(`${user} is not publishing: there is no video to put a filter on`);
  if (publisher.filters.some((entry) => entry.name === filter)) return {};
  const placement = context.placement();
  if (!placement) throw endpointError(`${user}'s media has no pipeline`);
  const { slot, pipeline } = placement;
  if (!slot.server.supportsFilters) {
    throw new RpcRequestError(
      rpcError(
        RoomCode.MEDIA_GENERIC,
        `The media server cannot apply filters: ${slot.uri} has no FaceOverlayFilter ` +
          "(the embedded media server has no filters; use a Kurento Media Server for the hat)",
      ),
    );
  }
  const check = context.guard();
  const current = (): boolean => graph.publishers.get(streamIdOf(user)) === publisher;
  let element: MediaElement;
  try {
    element = await pipeline.createFaceOverlayFilter({
      imageUrl: hat.url,
      offsetX: hat.offsetX,
      offsetY: hat.offsetY,
      width: hat.width,
      height: hat.height,
    });
  } catch (error) {
    if (error instanceof MediaServerError && error.failure === "unsupported") {
      const message = `The media server cannot apply filters: ${error.message}`;
      throw new RpcRequestError(rpcError(RoomCode.MEDIA_GENERIC, message));
    }
    throw error;
  }
  try {
    check(current);
    element.onError((error) => {
      if (current()) context.emit({ event: "mediaError", user, error, streams: [streamIdOf(user)] });
    });
    await insertBeforePassThrough(publisher, element);
    check(current);
    publisher.filters.push({ name: filter, element });
    return {};
  } catch (error) {
    await element.release();
    throw error;
  }
}

/**
 * Feeds the filter first, then makes it the PassThrough's source: subscribers
 * never see a gap. There is no `disconnect` of the old link: in Kurento a
 * sink has one source per media type and a new `connect` replaces it (the
 * embedded media server does the same), so the PassThrough's old link is
 * already gone, and KMS 7.2 given `previous.disconnect(passThrough)` then
 * unlinks the PassThrough's new source instead ("Padname …filterelement…
 * does not belong to element …webrtcendpoint… when removing"): no hat, and
 * no video behind it.
 */
async function insertBeforePassThrough(publisher: Publisher, element: MediaElement): Promise<void> {
  const previous = publisher.filters.at(-1)?.element ?? publisher.endpoint;
  await previous.connect(element);
  await element.connect(publisher.passThrough);
}

export async function removeFilter(
  graph: RoomGraph,
  user: string,
  filter: FilterName,
): Promise<MediaResult<"removeFilter">> {
  const publisher = graph.publishers.get(streamIdOf(user));
  if (!publisher) return {};
  const index = publisher.filters.findIndex((entry) => entry.name === filter);
  if (index < 0) return {};
  const entry = publisher.filters[index]!;
  const previous = index === 0 ? publisher.endpoint : publisher.filters[index - 1]!.element;
  const next = publisher.filters[index + 1]?.element ?? publisher.passThrough;
  // Replaces the filter as `next`'s source (one source per media type); releasing the filter cuts its feed.
  await previous.connect(next);
  publisher.filters.splice(index, 1);
  await entry.element.release();
  return {};
}
