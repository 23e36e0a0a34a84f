/**
 * A small seeded PRNG (mulberry32) so a soak run's decisions can be
 * replayed from its printed seed. Each simulated client draws from its own
 * stream (derived from the seed and its slot), so its sequence of choices
 * does not depend on how the clients interleave; the interleaving itself
 * follows real network and CPU timing and is not reproducible.
 */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A stream for `slot`, independent of the others (splitmix32 of seed and slot). */
  static derive(seed: number, slot: number): Rng {
    let z = (seed + Math.imul(slot + 1, 0x9e3779b9)) >>> 0;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return new Rng((z ^ (z >>> 16)) >>> 0);
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T | undefined {
    return items.length === 0 ? undefined : items[Math.floor(this.next() * items.length)];
  }

  /** One of the keys, with probability proportional to its weight (weights ≤ 0 never win). */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K | undefined {
    const entries = (Object.entries(weights) as Array<[K, number]>).filter(([, w]) => w > 0);
    const total = entries.reduce((sum, [, w]) => sum + w, 0);
    let r = this.next() * total;
    for (const [key, w] of entries) {
      r -= w;
      if (r < 0) return key;
    }
    return entries.at(-1)?.[0];
  }
}

/** A fresh seed when none is given (printed by the caller so the run can be repeated). */
export function randomSeed(): number {
  return Math.floor(Math.random() * 0x7fffffff);
}
