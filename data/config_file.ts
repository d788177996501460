/**
 * Reading external JSON files (spec files, class tables, panoptic annotations) and decoding them with a
 * Schema (`dsl/decode.ts`); unreadable files and bad JSON are `InvalidConfig` naming the file.
 */
import { Effect, type Schema } from "effect";
import { readFile } from "node:fs/promises";
import { decodeConfig, type ExcessKeys, InvalidConfig } from "../dsl/decode.ts";

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
