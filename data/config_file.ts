/**
 * Reading external JSON files (class tables, panoptic annotations) and decoding them with a Schema
 * (`dsl/decode.ts`); unreadable files and bad JSON are `InvalidConfig` naming the file (`dsl/load_spec.ts`'s
 * `readJson`, which spec files are read with too).
 */
import { Effect, type Schema } from "effect";
import { decodeConfig, type ExcessKeys, type InvalidConfig } from "../dsl/decode.ts";
import { readJson } from "../dsl/load_spec.ts";

/** Reads a JSON file and decodes it with `schema`. */
export const readJsonFile = <S extends Schema.Decoder<unknown>>(
  schema: S,
  file: string,
  excess: ExcessKeys = "error",
): Effect.Effect<S["Type"], InvalidConfig> =>
  Effect.flatMap(readJson(file), (value) => decodeConfig(schema, value, file, excess));
