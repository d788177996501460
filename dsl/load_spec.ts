/**
 * Loading a spec file, not yet decoded: a `.json` file is read and parsed, a `.ts`/`.js` module is imported
 * and its default export taken. Experiments (`dsl/experiment.ts`) and dataset specs (`data/spec_file.ts`)
 * both load through here and then decode the value with their own Schema. Every failure is an
 * `InvalidConfig` naming the file, with a one-line message.
 */
import { Effect } from "effect";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { InvalidConfig } from "./decode.ts";
import { importFailure, importModule } from "./module_file.ts";

/** The message of a thrown value, on one line. */
export const errorText = (e: unknown): string =>
  (e instanceof Error ? e.message : String(e)).split("\n")[0].trim();

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

const MODULE_EXTENSIONS = [".ts", ".js", ".mts", ".mjs"];

/**
 * The value a spec file holds: a `.json` file parsed, or a module's default export. Relative paths are
 * taken from the working directory.
 */
export const loadSpecFile = (file: string): Effect.Effect<unknown, InvalidConfig> =>
  Effect.gen(function* () {
    const fail = (message: string) => Effect.fail(new InvalidConfig({ file, message }));
    if (!existsSync(file)) return yield* fail("no such file");
    const ext = extname(file).toLowerCase();
    if (ext === ".json") return yield* readJson(file);
    if (!MODULE_EXTENSIONS.includes(ext)) {
      return yield* fail(`expected a .ts module or a .json file, got "${ext || file}"`);
    }
    // A module that does not import is reported where the error is: `file:line:column` in the module
    // itself, or the file with the place in a module it imports.
    const module = yield* Effect.tryPromise({
      try: () => importModule(file),
      catch: (e) => {
        const f = importFailure(e, file);
        return f.inModule
          ? new InvalidConfig({ file: f.location!, message: `cannot import: ${f.text}` })
          : new InvalidConfig({
            file,
            message: `cannot import: ${f.location ? `${f.location}: ` : ""}${f.text}`,
          });
      },
    });
    if (module.default === undefined) return yield* fail("the module has no default export");
    return module.default as unknown;
  });
