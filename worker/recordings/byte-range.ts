/**
 * HTTP Range requests on a recording's file (RFC 9110 §14), pure: one byte
 * range is served (206); a header in another unit, or asking for several
 * ranges at once, is ignored (the whole file, 200: a server may always do
 * that); a `bytes=` range that is malformed or starts past the end gets 416.
 */

export type RangeOutcome =
  | { readonly kind: "full" }
  | { readonly kind: "partial"; readonly offset: number; readonly length: number; readonly contentRange: string }
  /** `contentRange` is `bytes *\/<size>`, as a 416 answer carries it. */
  | { readonly kind: "unsatisfiable"; readonly contentRange: string };

const SPEC = /^(\d*)-(\d*)$/;

export function byteRange(header: string | null | undefined, size: number): RangeOutcome {
  if (header === null || header === undefined || header.trim() === "") return { kind: "full" };
  const match = /^\s*bytes\s*=(.*)$/i.exec(header);
  if (!match) return { kind: "full" };
  const specs = (match[1] ?? "").split(",").map((s) => s.trim());
  if (specs.length > 1) return { kind: "full" };
  const unsatisfiable = { kind: "unsatisfiable", contentRange: `bytes */${size}` } as const;
  const spec = SPEC.exec(specs[0] ?? "");
  if (!spec) return unsatisfiable;
  const [first, last] = [spec[1] ?? "", spec[2] ?? ""];
  if (first === "" && last === "") return unsatisfiable;
  let start: number;
  let end: number;
  if (first === "") {
    // A suffix: the last N bytes (all of them when N is larger than the file).
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return unsatisfiable;
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(first);
    end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
    if (last !== "" && Number(last) < start) return unsatisfiable;
    if (start >= size) return unsatisfiable;
  }
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return unsatisfiable;
  return { kind: "partial", offset: start, length: end - start + 1, contentRange: `bytes ${start}-${end}/${size}` };
}
