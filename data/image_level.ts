/**
 * An image-level data source: photos with the list of classes present and no masks (LarvSeg's
 * classification data), read from a `labels.json` of the form
 * `{"images": "<folder, relative to the file>", "labels": {"<image file>": [class id, ...], ...}}`
 * (ccp's `image-level/labels.json`).
 *
 * The file is decoded with Schema; then every tag is checked against the class table and the folder,
 * and all bad tags are reported at once, one problem per tag naming the labels file: an unknown class id,
 * an empty list, a missing image, an entry that leaves the image folder (`../x.jpg`, an absolute path, or a
 * symlink resolving outside it: the image folder is the source's dataset root). Duplicate ids in a list
 * count once.
 */
import { Effect, Schema } from "effect";
import { existsSync, realpathSync } from "node:fs";
import { readJsonFile } from "../io/json_file.ts";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { isInside } from "./listing.ts";
import { BadFiles, InvalidLabels, type Problem, UnreadableFile } from "./errors.ts";

const ClassId = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0));

/** The labels file's schema. */
export const ImageLevelLabelsFile = Schema.Struct({
  images: Schema.String,
  labels: Schema.Record(Schema.String, Schema.Array(ClassId)),
});

/** One image of an image-level source: its path and the sorted, distinct class ids present. */
export interface ImageLevelSample {
  readonly id: string;
  readonly image: string;
  readonly classes: readonly number[];
}

export interface ImageLevelSource {
  readonly file: string;
  readonly samples: readonly ImageLevelSample[];
  readonly classes: number;
}

/** Reads and checks `file` against a vocabulary of `classes` classes (names only used in messages). */
export const readImageLevelLabels = (file: string, classes: number) =>
  Effect.gen(function* () {
    const json = yield* readJsonFile(file).pipe(
      Effect.mapError((e) =>
        new UnreadableFile({
          file,
          message: `${e.problem === "not JSON" ? "invalid JSON" : e.problem}: ${e.detail}`,
        })
      ),
    );
    const decoded = yield* Schema.decodeUnknownEffect(ImageLevelLabelsFile)(json).pipe(
      Effect.mapError((e) => new InvalidLabels({ file, message: String(e.message).split("\n")[0] })),
    );
    const folder = join(dirname(file), decoded.images);
    const problems: Problem[] = [];
    const samples: ImageLevelSample[] = [];
    const realFolder = existsSync(folder) ? realpathSync(folder) : resolve(folder);
    /** Why the entry's file is not usable, if it is not: outside the folder (by name or by link), missing. */
    const placeProblem = (name: string, image: string): string | undefined => {
      if (isAbsolute(name)) return `an absolute path; entries name files inside the image folder ${folder}`;
      if (!isInside(resolve(folder), resolve(image))) {
        return `leaves the image folder ${folder} (entries name files inside it)`;
      }
      if (!existsSync(image)) return `image missing (${image})`;
      const target = realpathSync(image);
      return isInside(realFolder, target)
        ? undefined
        : `a symlink to ${target}, outside the image folder ${realFolder}: not followed`;
    };
    for (const [name, ids] of Object.entries(decoded.labels).sort(([a], [b]) => a.localeCompare(b))) {
      const bad = (message: string) => problems.push({ file, message: `"${name}": ${message}` });
      const image = join(folder, name);
      const unknown = ids.filter((c) => c >= classes);
      if (ids.length === 0) bad("empty class list");
      for (const c of unknown) {
        bad(`class id ${c} is not in the ${classes}-class vocabulary (0..${classes - 1})`);
      }
      const place = placeProblem(name, image);
      if (place !== undefined) bad(place);
      if (ids.length > 0 && unknown.length === 0 && place === undefined) {
        samples.push({
          id: name.replace(/\.[^.]*$/, ""),
          image,
          classes: [...new Set(ids)].sort((a, b) => a - b),
        });
      }
    }
    if (problems.length > 0) {
      return yield* new BadFiles({ file, message: `${problems.length} bad image-level tags`, problems });
    }
    return { file, samples, classes } satisfies ImageLevelSource;
  });

/** What `deno task data` reports of an image-level source: images, labels per image, images per class. */
export const imageLevelSummary = (s: ImageLevelSource) => {
  const perClass = new Array<number>(s.classes).fill(0);
  for (const x of s.samples) for (const c of x.classes) perClass[c]++;
  const labels = s.samples.reduce((a, x) => a + x.classes.length, 0);
  return {
    images: s.samples.length,
    labelsPerImage: labels / Math.max(s.samples.length, 1),
    imagesPerClass: perClass,
  };
};

/** The multi-hot [K] image-level label of a sample (the training graph's `imageLabels` row). */
export const multiHot = (sample: ImageLevelSample, classes: number): Uint8Array => {
  const out = new Uint8Array(classes);
  for (const c of sample.classes) out[c] = 1;
  return out;
};
