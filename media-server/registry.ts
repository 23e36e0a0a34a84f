import { KurentoError } from "./errors.ts";
import type { MediaObject } from "./objects/media-object.ts";

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
