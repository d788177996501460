/**
 * Listing the files of a split directory, with the errors a missing or empty split deserves.
 */
import { Effect } from "effect";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { errorText } from "../dsl/load_spec.ts";
import { EmptySplit, InvalidConfig } from "./errors.ts";

/** A file name split into its stem and the suffix that matched. */
export interface ListedFile {
  readonly stem: string;
  readonly name: string;
}

/** The entries of a directory that are files, sorted by name; a missing directory is `undefined`. */
export const listFiles = (dir: string): Effect.Effect<readonly string[] | undefined, InvalidConfig> =>
  Effect.tryPromise({
    try: async () => {
      try {
        const entries = await readdir(dir, { withFileTypes: true });
        return entries.filter((e) => e.isFile()).map((e) => e.name).sort();
      } catch (e) {
        if ((e as { code?: string }).code === "ENOENT") return undefined;
        throw e;
      }
    },
    catch: (e) => new InvalidConfig({ file: dir, message: `cannot list directory: ${errorText(e)}` }),
  });

/** The subdirectories of a directory, sorted; none if it does not exist. */
export const listDirs = (dir: string): Effect.Effect<readonly string[]> =>
  Effect.promise(async () => {
    try {
      const entries = await readdir(dir, { withFileTypes: true });
      return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
    } catch {
      return [];
    }
  });

/**
 * The images of one split: files of `root/<split>` whose name ends with one of `suffixes`.
 *
 * Fails with `InvalidConfig` when the split directory does not exist (naming the splits that do) and with
 * `EmptySplit` when it holds no image.
 */
export const listSplitImages = (
  dir: string,
  split: string,
  suffixes: readonly string[],
): Effect.Effect<readonly ListedFile[], InvalidConfig | EmptySplit> =>
  Effect.gen(function* () {
    const splitDir = join(dir, split);
    const names = yield* listFiles(splitDir);
    if (names === undefined) {
      const found = yield* listDirs(dir);
      return yield* Effect.fail(
        new InvalidConfig({
          file: splitDir,
          message: `split "${split}" does not exist (splits found: ${
            found.length ? found.join(", ") : "none"
          })`,
        }),
      );
    }
    const images = names.flatMap((name) => {
      const suffix = suffixes.find((s) => name.toLowerCase().endsWith(s.toLowerCase()));
      return suffix === undefined ? [] : [{ stem: name.slice(0, name.length - suffix.length), name }];
    });
    if (images.length === 0) {
      return yield* Effect.fail(
        new EmptySplit({
          file: splitDir,
          message: `split "${split}" has no images (${suffixes.join(", ")})`,
        }),
      );
    }
    return images;
  });
