/**
 * Reading JSON files so that every failure names the file, and where in it: the one reader for the JSON
 * files kappa reads back (experiment.json, meta.json, eval records, metrics.jsonl lines, dataset
 * configs). A bare `JSON.parse` of a corrupt file says only `SyntaxError: Unterminated string in JSON`;
 * these say `runs/x/meta.json: not JSON: Unterminated string in JSON at position 40 (line 3 column 12)`.
 */
import { Data, Effect } from "effect";
import { readFile } from "node:fs/promises";

/** A JSON file that cannot be read or parsed; the message starts with the file (and line, for JSON lines). */
export class JsonFileError extends Data.TaggedError("JsonFileError")<{
  readonly file: string;
  /** The file, or `file:line` for one line of a JSON-lines file. */
  readonly where: string;
  readonly problem: "cannot read" | "not JSON";
  /** What the file system or the parser said, e.g. `Unterminated string in JSON at position 8 (line 2 column 3)`. */
  readonly detail: string;
}> {
  override get message(): string {
    return `${this.where}: ${this.problem}: ${this.detail}`;
  }
}

const oneLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0].trim();

/**
 * Parses `text` read from `where` (a file, or `file:line` for one line of a JSON-lines file). V8's
 * message already gives the position with line and column; it is kept as it is.
 */
export const parseJsonText = (
  text: string,
  where: string,
  file = where,
): Effect.Effect<unknown, JsonFileError> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (e) => new JsonFileError({ file, where, problem: "not JSON", detail: oneLine(e) }),
  });

/** Reads and parses a JSON file. */
export const readJsonFile = (file: string): Effect.Effect<unknown, JsonFileError> =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (e) => new JsonFileError({ file, where: file, problem: "cannot read", detail: oneLine(e) }),
  }).pipe(Effect.flatMap((text) => parseJsonText(text, file)));

/** A JSON-lines text split into parsed values (`line`: 1-based), blank lines skipped. */
export interface JsonLines {
  readonly values: readonly { readonly line: number; readonly value: unknown; readonly text: string }[];
  /**
   * The last line when it does not parse and no newline follows it: the tail of an append that was
   * cut off (a full disk, a killed process). Undefined when the file ends cleanly.
   */
  readonly tornTail: { readonly line: number; readonly text: string } | undefined;
}

/**
 * Parses JSON-lines `text` from `file`. A line that does not parse fails naming `file:line`, except an
 * unterminated last line, which is returned as `tornTail` for the caller to cut or skip.
 */
export const parseJsonLines = (text: string, file: string): Effect.Effect<JsonLines, JsonFileError> =>
  Effect.gen(function* () {
    const lines = text.split("\n");
    const values: { line: number; value: unknown; text: string }[] = [];
    let tornTail: JsonLines["tornTail"];
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (line.trim() === "") continue;
      const parsed = yield* Effect.result(parseJsonText(line, `${file}:${i + 1}`, file));
      if (parsed._tag === "Success") values.push({ line: i + 1, value: parsed.success, text: line });
      // The last element after split has no newline after it: an append cut off midway.
      else if (i === lines.length - 1) tornTail = { line: i + 1, text: line };
      else return yield* parsed.failure;
    }
    return { values, tornTail };
  });
