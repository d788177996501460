/**
 * Reading external JSON files (class tables, panoptic annotations) and decoding them with a Schema
 * (`dsl/decode.ts`); unreadable files and bad JSON are `InvalidConfig` naming the file and, for bad JSON,
 * the position (`io/json_file.ts`). Spec files are read by `dsl/load_spec.ts`.
 */
import { Effect, type Schema } from "effect";
import { readJsonFile as readJsonValue } from "../io/json_file.ts";
import { decodeConfig, type ExcessKeys, InvalidConfig } from "../dsl/decode.ts";

/** Reads and parses a JSON file, not yet decoded; unreadable files and bad JSON are `InvalidConfig`. */
export const readJson = (file: string): Effect.Effect<unknown, InvalidConfig> =>
  readJsonValue(file).pipe(
    Effect.mapError((e) =>
      new InvalidConfig({
        file,
        message: `${e.problem === "not JSON" ? "invalid JSON" : e.problem}: ${e.detail}`,
      })
    ),
  );

/** Reads a JSON file and decodes it with `schema`. */
export const readJsonFile = <S extends Schema.Decoder<unknown>>(
  schema: S,
  file: string,
  excess: ExcessKeys = "error",
): Effect.Effect<S["Type"], InvalidConfig> =>
  Effect.flatMap(readJson(file), (value) => decodeConfig(schema, value, file, excess));
