import { z } from "zod";
import { KurentoError } from "../errors.ts";
import { parseParams } from "../protocol.ts";

/** The session an operation runs for (as objects see it): objects it names must be its own. */
export interface Caller {
  readonly id: string;
}

/** The `operationParams` of an `invoke`, before validation. */
export type RawParams = Record<string, unknown> | undefined;

/** One operation of a media object type: validates its params, then runs on the object it was invoked on. */
export type Operation<T> = (target: T, raw: RawParams, name: string, caller: Caller | undefined) => unknown;

/**
 * A type's operations by name. Each table is built once, when its module
 * loads, from its parent type's table; an `invoke` only looks the name up.
 */
export type OperationTable<T> = ReadonlyMap<string, Operation<T>>;

/** Binds an operation's zod schema (built once, with the table) to what it does. */
export function operation<T, S extends z.ZodType>(
  schema: S,
  run: (target: T, params: z.infer<S>, caller: Caller | undefined) => unknown,
): Operation<T> {
  return (target, raw, name, caller) => run(target, parseParams(schema, raw, name), caller);
}

export const noParams = z.object({}).loose();

/** A type's table: its parent's operations plus its own (an own one replaces an inherited one of the same name). */
export function operationTable<T>(
  parent: OperationTable<T> | undefined,
  own: Record<string, Operation<T>>,
): OperationTable<T> {
  return new Map([...(parent ?? []), ...Object.entries(own)]);
}

/** Runs `name` on `target`; a name the table lacks is KMS's "method not found" (40105). */
export function invokeOperation<T extends { readonly typeName: string }>(
  table: OperationTable<T>,
  target: T,
  name: string,
  raw: RawParams,
  caller: Caller | undefined,
): unknown {
  const run = table.get(name);
  if (!run) {
    throw new KurentoError(
      "MEDIA_OBJECT_METHOD_NOT_FOUND",
      `${target.typeName} has no operation "${name}" in the embedded media server`,
    );
  }
  return run(target, raw, name, caller);
}
