/**
 * Decoding external values (spec files, class tables, panoptic annotations) through a Schema.
 *
 * This is the boundary: past it the data is typed and trusted. Failures become `InvalidConfig` with the
 * file and a one-line message that says where in the document the problem is.
 */
import { Data, Effect, Result, Schema } from "effect";

/** A dataset spec, pipeline spec, class table or option that fails validation. */
export class InvalidConfig extends Data.TaggedError("InvalidConfig")<{ file: string; message: string }> {}

/** Rewrites a Schema issue ("Expected number\n  at ["x"]") as one line ("at ["x"]: Expected number"). */
export const issueLine = (error: { readonly message: string }): string => {
  const lines = error.message.split("\n").map((l) => l.trim()).filter((l) => l.length > 0);
  const where = lines.filter((l) => l.startsWith("at "));
  const what = lines.filter((l) => !l.startsWith("at "));
  return where.length > 0 ? `${where.join(" ")}: ${what.join("; ")}` : what.join("; ");
};

/** How strict decoding is about keys the schema does not know. */
export type ExcessKeys = "error" | "ignore";

/**
 * Decodes an unknown value with `schema`, failing with `InvalidConfig` naming `file`.
 *
 * Gotcha: with `excess: "error"` (the default, for specs people write by hand) a misspelt key is an
 * error rather than silently ignored; external formats with extra fields use `"ignore"`.
 */
export const decodeConfig = <S extends Schema.Decoder<unknown>>(
  schema: S,
  value: unknown,
  file: string,
  excess: ExcessKeys = "error",
): Effect.Effect<S["Type"], InvalidConfig> => {
  const decoded = Schema.decodeUnknownResult(schema)(value, { onExcessProperty: excess });
  return Result.isSuccess(decoded)
    ? Effect.succeed(decoded.success)
    : Effect.fail(new InvalidConfig({ file, message: issueLine(decoded.failure) }));
};
