/**
 * Listing the files of a split directory, with the errors a missing or empty split deserves.
 *
 * Symlinks: a link that resolves to a file inside the dataset root (the root itself resolved through its
 * own links) is listed like the file; any other link to a file-like name (one that leaves the root, or
 * points nowhere) is returned as `unfollowed` with the reason, so that callers name it instead of
 * skipping it silently. Links to directories are ignored, as directories are.
 */
import { Effect } from "effect";
import { readdir, readlink, realpath, stat } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import { errorText } from "../dsl/load_spec.ts";
import { EmptySplit, InvalidConfig, type Problem } from "./errors.ts";

/** A file name split into its stem and the suffix that matched. */
export interface ListedFile {
  readonly stem: string;
  readonly name: string;
}

/** The files of a directory: plain files and followed links, sorted, and the links not followed. */
export interface DirListing {
  readonly files: readonly string[];
  /** Entry name → why the link was not followed. */
  readonly unfollowed: ReadonlyMap<string, string>;
}

/** `path` lies inside `folder` (both absolute and resolved). */
export const isInside = (folder: string, path: string): boolean => {
  const r = relative(folder, path);
  return r === "" || (!r.startsWith("..") && !isAbsolute(r));
};

/** What a symlink leads to: a file inside `root`, a directory, or a reason not to follow it. */
const followLink = async (
  link: string,
  root: string,
): Promise<
  { readonly kind: "file" | "directory" } | { readonly kind: "unfollowed"; readonly why: string }
> => {
  let target: string;
  try {
    target = await realpath(link);
  } catch {
    const to = await readlink(link).catch(() => "?");
    return {
      kind: "unfollowed",
      why: `broken symlink (its target ${resolve(link, "..", to)} does not exist)`,
    };
  }
  if ((await stat(target)).isDirectory()) return { kind: "directory" };
  if (!isInside(root, target)) {
    return {
      kind: "unfollowed",
      why: `symlink to ${target}, outside the dataset root ${root}: not followed`,
    };
  }
  return { kind: "file" };
};

/**
 * The entries of a directory that are files (or links to files inside `root`, default the directory),
 * sorted by name; a missing directory is `undefined`.
 */
export const listFiles = (
  dir: string,
  root: string = dir,
): Effect.Effect<DirListing | undefined, InvalidConfig> =>
  Effect.tryPromise({
    try: async () => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (e) {
        if ((e as { code?: string }).code === "ENOENT") return undefined;
        throw e;
      }
      const realRoot = await realpath(root);
      const files: string[] = [];
      const unfollowed = new Map<string, string>();
      for (const e of entries) {
        if (e.isFile()) files.push(e.name);
        else if (e.isSymbolicLink()) {
          const link = await followLink(join(dir, e.name), realRoot);
          if (link.kind === "file") files.push(e.name);
          else if (link.kind === "unfollowed") unfollowed.set(e.name, link.why);
        }
      }
      return { files: files.sort(), unfollowed: new Map([...unfollowed].sort(([a], [b]) => a < b ? -1 : 1)) };
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

/** The images of a split and the image links that were not followed (one problem each, naming the link). */
export interface SplitImages {
  readonly images: readonly ListedFile[];
  readonly unfollowed: readonly Problem[];
}

/**
 * The images of one split: files of `dir/<split>` whose name ends with one of `suffixes`; symlinks are
 * followed inside `root` (the dataset root).
 *
 * Fails with `InvalidConfig` when the split directory does not exist (naming the splits that do) and with
 * `EmptySplit` when it holds no image (naming the image links that were not followed, if any).
 */
export const listSplitImages = (
  dir: string,
  split: string,
  suffixes: readonly string[],
  root: string,
): Effect.Effect<SplitImages, InvalidConfig | EmptySplit> =>
  Effect.gen(function* () {
    const splitDir = join(dir, split);
    const listing = yield* listFiles(splitDir, root);
    if (listing === undefined) {
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
    const suffixOf = (name: string) => suffixes.find((s) => name.toLowerCase().endsWith(s.toLowerCase()));
    const images = listing.files.flatMap((name) => {
      const suffix = suffixOf(name);
      return suffix === undefined ? [] : [{ stem: name.slice(0, name.length - suffix.length), name }];
    });
    const unfollowed = [...listing.unfollowed].filter(([name]) => suffixOf(name) !== undefined);
    if (images.length === 0) {
      const links = unfollowed.length === 0
        ? ""
        : ` but ${unfollowed.length} symlink${unfollowed.length > 1 ? "s" : ""} that ${
          unfollowed.length > 1 ? "were" : "was"
        } not followed: ${unfollowed.map(([name, why]) => `${name} (${why})`).join(", ")}`;
      return yield* Effect.fail(
        new EmptySplit({
          file: splitDir,
          message: `split "${split}" has no images (${suffixes.join(", ")})${links}`,
        }),
      );
    }
    return {
      images,
      unfollowed: unfollowed.map(([name, why]) => ({ file: join(splitDir, name), message: why })),
    };
  });
