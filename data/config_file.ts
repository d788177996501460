/**
 * Decoding external JSON (spec files, class tables, panoptic annotations) through a Schema.
 *
 * This is the boundary: past it the data is typed and trusted. Failures become `InvalidConfig` with the
 * file and a one-line message that says where in the document the problem is.
 */
import { Effect, Result, Schema } from "effect";
import { readFile } from "node:fs/promises";
import { InvalidConfig } from "./errors.ts";

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

/** Reads and parses a JSON file, not yet decoded; unreadable files and bad JSON are `InvalidConfig`. */
export const readJson = (file: string): Effect.Effect<unknown, InvalidConfig> =>
  Effect.gen(function* () {
    const text = yield* Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: (e) => new InvalidConfig({ file, message: `cannot read: ${errorText(e)}` }),
    });
    return yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) => new InvalidConfig({ file, message: `invalid JSON: ${errorText(e)}` }),
    });
  });

/** Reads a JSON file and decodes it with `schema`. */
export const readJsonFile = <S extends Schema.Decoder<unknown>>(
  schema: S,
  file: string,
  excess: ExcessKeys = "error",
): Effect.Effect<S["Type"], InvalidConfig> =>
  Effect.flatMap(readJson(file), (value) => decodeConfig(schema, value, file, excess));

/** The message of a thrown value, on one line. */
export const errorText = (e: unknown): string =>
  (e instanceof Error ? e.message : String(e)).split("\n")[0].trim();
