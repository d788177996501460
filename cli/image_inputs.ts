/**
 * The images a command is given: each argument is an image file, or a folder that stands for the image
 * files directly inside it (sorted by name; other files and subfolders are skipped), so that
 * `predict runs/x images/` works as well as `predict runs/x images/*.jpg`.
 */
import { Data, Effect } from "effect";
import { Argument } from "effect/cli";
import { readdirSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { pathArgument } from "./flag_schema.ts";

/** The file extensions a folder is searched for (what sharp decodes), compared case-insensitively. */
export const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"] as const;

/** The image arguments of predict and classify: files, or folders that stand for their images. */
export const imagesArgument = (): Argument.Argument<ReadonlyArray<string>> =>
  pathArgument(
    "image",
    `image files, or folders that stand for the images in them (${IMAGE_EXTENSIONS.join(", ")}; sorted by ` +
      "name); any number",
  ).pipe(Argument.variadic({ min: 1 }));

/** A folder given as input holds no image. */
export class NoImagesInFolder extends Data.TaggedError("NoImagesInFolder")<{ readonly file: string }> {
  override get message(): string {
    return `no images in this folder (looked for ${IMAGE_EXTENSIONS.join(", ")})`;
  }
}

const stat = (path: string) => {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
};

const isImageName = (name: string) =>
  (IMAGE_EXTENSIONS as readonly string[]).includes(extname(name).toLowerCase());

/** A folder's image files (links followed), sorted by name. */
const folderImages = (dir: string) =>
  readdirSync(dir).filter((name) => isImageName(name) && stat(join(dir, name))?.isFile()).sort()
    .map((name) => join(dir, name));

/**
 * Every argument's images in order: a file as it is (a missing one fails later, where it is read, with its
 * name), a folder as its image files sorted by name.
 */
export const imageInputs = (args: readonly string[]): Effect.Effect<string[], NoImagesInFolder> =>
  Effect.suspend(() => {
    const out: string[] = [];
    for (const arg of args) {
      if (!stat(arg)?.isDirectory()) {
        out.push(arg);
        continue;
      }
      const images = folderImages(arg);
      if (images.length === 0) return Effect.fail(new NoImagesInFolder({ file: arg }));
      for (const image of images) out.push(image);
    }
    return Effect.succeed(out);
  });
