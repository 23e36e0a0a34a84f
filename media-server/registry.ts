import { KurentoError } from "./errors.ts";
import type { MediaObject, ObjectOwner } from "./objects/media-object.ts";

/** Every live media object by id. The ServerManager lives outside it: it is permanent and not a "live object" for leak checks. */
export class ObjectRegistry {
  private readonly objects = new Map<string, MediaObject>();
  private readonly permanent = new Map<string, MediaObject>();

  addPermanent(object: MediaObject): void {
    this.permanent.set(object.id, object);
  }

  add(object: MediaObject): void {
    this.objects.set(object.id, object);
  }

  remove(object: MediaObject): void {
    if (this.objects.get(object.id) === object) this.objects.delete(object.id);
  }

  find(id: string): MediaObject | undefined {
    return this.objects.get(id) ?? this.permanent.get(id);
  }

  get(id: string): MediaObject {
    const object = this.find(id);
    if (!object) throw new KurentoError("MEDIA_OBJECT_NOT_FOUND", `Object '${id}' not found`);
    return object;
  }

  /**
   * The object `id` if `caller` may use it: its own objects and the permanent
   * ones (the ServerManager). Another session's object is "not found" (40101),
   * exactly as an id that never existed, so its existence is not revealed.
   */
  getFor(id: string, caller: ObjectOwner | undefined): MediaObject {
    const object = this.find(id);
    if (!object || (!this.permanent.has(id) && (caller === undefined || object.owner !== caller))) {
      throw new KurentoError("MEDIA_OBJECT_NOT_FOUND", `Object '${id}' not found`);
    }
    return object;
  }

  get size(): number {
    return this.objects.size;
  }

  pipelines(): MediaObject[] {
    return [...this.objects.values()].filter((object) => object.parent === undefined);
  }

  all(): MediaObject[] {
    return [...this.objects.values()];
  }
}
