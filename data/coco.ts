/**
 * Reader for COCO panoptic datasets (`coco133`): semantic masks of sparse category ids mapped to contiguous
 * training ids through the panoptic JSON's category list, and per-image panoptic segment lists.
 *
 * Gotcha: the semantic PNG's 0 means "no segment covers this pixel" and is ignored, never a class; the
 * category list's order (not the sparse id) defines training ids 0..K-1.
 */
import { Effect, Schema } from "effect";
import { basename, join } from "node:path";
import { defaultColor } from "./classes.ts";
import { RgbSchema } from "../dsl/dataset.ts";
import { readJsonFile } from "./config_file.ts";
import type { Dataset, SampleRef } from "./dataset.ts";
import { decodeBoth, type DecodeLimits, readSegmentIds, readSize } from "./decode.ts";
import {
  type DataError,
  type FileError,
  InvalidConfig,
  InvalidLabels,
  MissingMask,
  type Problem,
} from "./errors.ts";
import { pairedDataset } from "./folder.ts";
import { buildLabelMapping, INVALID, type LabelMapping, RAW_VALUES, type SourceLabels } from "./labels.ts";
import { listFiles, listSplitImages } from "./listing.ts";
import type { CocoPanopticSpec } from "../dsl/dataset.ts";

const Flag = Schema.Literals([0, 1]);

/** Schema of a COCO panoptic category. */
export const PanopticCategory = Schema.Struct({
  id: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: RAW_VALUES - 1 })),
  name: Schema.String,
  isthing: Flag,
  color: Schema.optionalKey(RgbSchema),
  supercategory: Schema.optionalKey(Schema.String),
});

/** Schema of one segment of a panoptic annotation. */
export const PanopticSegment = Schema.Struct({
  id: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 256 ** 3 - 1 })),
  category_id: Schema.Int,
  iscrowd: Flag,
  area: Schema.Number,
});

/** Schema of the parts of a COCO panoptic JSON file kappa reads (other keys are allowed and ignored). */
export const PanopticJson = Schema.Struct({
  images: Schema.Array(Schema.Struct({
    id: Schema.Int,
    file_name: Schema.String,
    width: Schema.Int,
    height: Schema.Int,
  })),
  annotations: Schema.Array(Schema.Struct({
    image_id: Schema.Int,
    file_name: Schema.String,
    segments_info: Schema.Array(PanopticSegment),
  })),
  categories: Schema.Array(PanopticCategory).check(Schema.isMinLength(1)),
});
export type PanopticJson = typeof PanopticJson.Type;
export type PanopticCategory = typeof PanopticCategory.Type;

/** One panoptic segment of an image. */
export interface Segment {
  /** The segment id encoded in the panoptic PNG. */
  readonly id: number;
  /** Training id of its category, or the ignore index when the dataset's subset/classMap drops it. */
  readonly category: number;
  /** The sparse COCO category id. */
  readonly categoryId: number;
  readonly isThing: boolean;
  readonly isCrowd: boolean;
  /** Pixel count (checked against the PNG). */
  readonly area: number;
  /** 1 where the segment is, row-major. */
  readonly mask: Uint8Array;
}

/** The panoptic annotation of one image. */
export interface PanopticImage {
  readonly id: string;
  readonly width: number;
  readonly height: number;
  /** Segment id per pixel, 0 = void. */
  readonly segmentIds: Int32Array;
  readonly segments: readonly Segment[];
}

/** A split of a COCO panoptic dataset: semantic samples plus panoptic segment lists. */
export interface CocoDataset extends Dataset {
  readonly json: string;
  readonly categories: readonly PanopticCategory[];
  /** The JSON's `images[].id` of each sample, by its image file (`SampleRef.image`). */
  readonly imageIds: ReadonlyMap<string, number>;
  /** Reads an image's panoptic PNG and checks it against its JSON segments. */
  readonly readPanoptic: (sample: SampleRef) => Effect.Effect<PanopticImage, FileError>;
}

/** Category list → source classes: raw value = sparse category id, 0 = unlabeled (ignore). */
export const cocoSourceLabels = (categories: readonly PanopticCategory[], json: string): SourceLabels => {
  const rawToSource = new Int32Array(RAW_VALUES).fill(INVALID);
  rawToSource[0] = -1;
  categories.forEach((c, k) => (rawToSource[c.id] = k));
  return {
    names: categories.map((c) => c.name),
    colors: categories.map((c, k) => c.color ?? defaultColor(k)),
    isThing: categories.map((c) => c.isthing === 1),
    ignoreIndex: 255,
    rawToSource,
    invalidHint: `not a category id of ${basename(json)} (0 = unlabeled)`,
  };
};

/** Checks category ids are unique (names are checked with the class table). */
const checkCategories = (json: PanopticJson, file: string): Effect.Effect<void, InvalidConfig> => {
  const seen = new Set<number>();
  for (const c of json.categories) {
    if (seen.has(c.id)) {
      return Effect.fail(
        new InvalidConfig({ file, message: `category id ${c.id} ("${c.name}") appears twice` }),
      );
    }
    seen.add(c.id);
  }
  return Effect.void;
};

type Annotation = PanopticJson["annotations"][number];

/**
 * Opens one split: lists its images, pairs each with its panoptic annotation and its semantic mask, and
 * reports images without either, annotations without an image, and segments with unknown categories.
 *
 * Pairing follows COCO: an annotation's `image_id` names an entry of `images`, whose `file_name` is the
 * image; the annotation's own `file_name` is the panoptic PNG, named however the dataset likes
 * (Cityscapes: `*_leftImg8bit.png` images, `*_gtFine_panoptic.png` PNGs). The semantic mask is
 * `<image stem>.png`, or else named like the panoptic PNG.
 */
export const openCocoPanoptic = (
  spec: CocoPanopticSpec,
  split: string,
  specFile: string,
): Effect.Effect<CocoDataset, DataError> =>
  Effect.gen(function* () {
    const jsonFile = join(spec.root, spec.panopticDir, `panoptic_${split}.json`);
    const imageDir = join(spec.root, spec.imageDir);
    const { images, unfollowed } = yield* listSplitImages(
      imageDir,
      split,
      [".jpg", ".jpeg", ".png"],
      spec.root,
    );
    const json = yield* readJsonFile(PanopticJson, jsonFile, "ignore");
    yield* checkCategories(json, jsonFile);
    const mapping = yield* buildLabelMapping(cocoSourceLabels(json.categories, jsonFile), spec, specFile);
    const semanticDir = join(spec.root, spec.semanticDir, split);
    const panopticDir = join(spec.root, spec.panopticDir, split);
    const semantic = yield* listFiles(semanticDir, spec.root);
    const masks = new Set(semantic?.files ?? []);

    const categoryIds = new Set(json.categories.map((c) => c.id));
    const imageById = new Map(json.images.map((i) => [i.id, i]));
    // Image links that were not followed are named once (below), not again as annotations without an image.
    const listedNames = new Set([...images.map((i) => i.name), ...unfollowed.map((p) => basename(p.file))]);
    // An `images[].file_name` may carry a folder (`frankfurt/x.png`); the split folder holds the file.
    const listedName = (fileName: string) =>
      listedNames.has(fileName)
        ? fileName
        : listedNames.has(basename(fileName))
        ? basename(fileName)
        : undefined;
    /** Listed image name → its annotation, and whether that annotation is usable. */
    const annotationOf = new Map<string, { readonly annotation: Annotation; readonly usable: boolean }>();
    const problems: Problem[] = [...unfollowed];
    const strays: Problem[] = [];
    for (const a of json.annotations) {
      const unknown = a.segments_info.filter((s) => !categoryIds.has(s.category_id));
      for (const s of unknown) {
        problems.push({
          file: jsonFile,
          message: `${a.file_name}: segment ${s.id} has unknown category id ${s.category_id}`,
        });
      }
      const info = imageById.get(a.image_id);
      if (info === undefined) {
        problems.push({
          file: jsonFile,
          message: `${a.file_name}: image_id ${a.image_id} is not in "images"`,
        });
        continue;
      }
      const name = listedName(info.file_name);
      if (name === undefined) {
        strays.push({
          file: jsonFile,
          message: `${a.file_name}: annotation for an image not in ${split} (${info.file_name})`,
        });
      } else if (annotationOf.has(name)) {
        problems.push({
          file: jsonFile,
          message: `${a.file_name}: a second annotation of ${info.file_name}`,
        });
      } else annotationOf.set(name, { annotation: a, usable: unknown.length === 0 });
    }

    const samples: SampleRef[] = [];
    const annotationBySample = new Map<string, Annotation>();
    const imageIds = new Map<string, number>();
    for (const { stem, name } of images) {
      const image = join(imageDir, split, name);
      const entry = annotationOf.get(name);
      if (entry === undefined) {
        problems.push({ file: image, message: `no panoptic annotation in ${jsonFile}` });
        continue;
      }
      const pngName = `${stemOf(basename(entry.annotation.file_name))}.png`;
      const maskName = masks.has(`${stem}.png`) ? `${stem}.png` : masks.has(pngName) ? pngName : undefined;
      const maskLink = semantic?.unfollowed.get(`${stem}.png`);
      if (maskName === undefined && maskLink !== undefined) {
        problems.push({ file: join(semanticDir, `${stem}.png`), message: maskLink });
      } else if (maskName === undefined) {
        problems.push(
          new MissingMask({ file: image, message: `no semantic mask ${join(semanticDir, `${stem}.png`)}` }),
        );
      } else if (entry.usable) {
        samples.push({ id: stem, image, mask: join(semanticDir, maskName) });
        annotationBySample.set(image, entry.annotation);
        imageIds.set(image, entry.annotation.image_id);
      }
    }
    problems.push(...strays);

    return {
      ...pairedDataset(spec, split, images.length + unfollowed.length, mapping, samples, problems),
      json: jsonFile,
      categories: json.categories,
      imageIds,
      readPanoptic: (sample) => {
        const annotation = annotationBySample.get(sample.image);
        if (annotation === undefined) {
          return Effect.fail(
            new InvalidLabels({ file: jsonFile, message: `no panoptic annotation for ${sample.id}` }),
          );
        }
        const png = join(panopticDir, annotation.file_name);
        const info = imageById.get(annotation.image_id)!;
        return readPanopticImage(sample, annotation, info, png, json.categories, mapping, jsonFile, {
          maxPixels: spec.maxPixels,
        });
      },
    };
  });

const stemOf = (fileName: string) => fileName.replace(/\.[^.]*$/, "");

/**
 * Decodes a panoptic PNG and checks it against its JSON entry: same size as the image, every PNG id has a
 * segment, every segment has pixels, and each segment's area equals its pixel count.
 */
const readPanopticImage = (
  sample: SampleRef,
  annotation: Annotation,
  info: { readonly width: number; readonly height: number },
  png: string,
  categories: readonly PanopticCategory[],
  mapping: LabelMapping,
  jsonFile: string,
  limits: DecodeLimits,
): Effect.Effect<PanopticImage, FileError> =>
  Effect.gen(function* () {
    const [ids, size] = yield* decodeBoth(readSegmentIds(png, limits), readSize(sample.image));
    const bad = (message: string) => Effect.fail(new InvalidLabels({ file: png, message }));
    if (ids.width !== size.width || ids.height !== size.height) {
      return yield* bad(
        `panoptic PNG is ${ids.width}x${ids.height} but its image is ${size.width}x${size.height}`,
      );
    }
    if (info.width !== size.width || info.height !== size.height) {
      return yield* bad(
        `${
          basename(jsonFile)
        } says ${info.width}x${info.height} but the image is ${size.width}x${size.height}`,
      );
    }
    const index = new Map<number, number>();
    annotation.segments_info.forEach((s, i) => index.set(s.id, i));
    const counts = new Float64Array(annotation.segments_info.length);
    const orphans = new Map<number, number>();
    for (let p = 0; p < ids.data.length; p++) {
      const id = ids.data[p];
      if (id === 0) continue;
      const i = index.get(id);
      if (i === undefined) orphans.set(id, (orphans.get(id) ?? 0) + 1);
      else counts[i]++;
    }
    if (orphans.size > 0) {
      const [id, n] = [...orphans][0];
      return yield* bad(
        `segment id ${id} (RGB ${id & 255},${(id >> 8) & 255},${id >> 16}; ${n} pixels) has no entry in ${
          basename(jsonFile)
        }${orphans.size > 1 ? ` (and ${orphans.size - 1} more ids)` : ""}`,
      );
    }
    const position = new Map(categories.map((c, k) => [c.id, k]));
    const segments: Segment[] = [];
    for (let i = 0; i < annotation.segments_info.length; i++) {
      const s = annotation.segments_info[i];
      if (counts[i] === 0) {
        return yield* bad(`segment ${s.id} of ${basename(jsonFile)} has no pixels in the PNG`);
      }
      if (counts[i] !== s.area) {
        return yield* bad(
          `segment ${s.id} has area ${s.area} in ${basename(jsonFile)} but ${counts[i]} pixels in the PNG`,
        );
      }
      const mask = new Uint8Array(ids.data.length);
      for (let p = 0; p < mask.length; p++) if (ids.data[p] === s.id) mask[p] = 1;
      const k = position.get(s.category_id)!;
      segments.push({
        id: s.id,
        category: mapping.lut[s.category_id],
        categoryId: s.category_id,
        isThing: categories[k].isthing === 1,
        isCrowd: s.iscrowd === 1,
        area: s.area,
        mask,
      });
    }
    return { id: sample.id, width: ids.width, height: ids.height, segmentIds: ids.data, segments };
  });
