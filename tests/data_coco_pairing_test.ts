/**
 * COCO panoptic pairing: an image and its panoptic PNG are paired through the JSON
 * (`annotations[].image_id` → `images[].id` → `images[].file_name`), not by file-name stem, so
 * Cityscapes-style names (`*_leftImg8bit.png` images, `*_gtFine_panoptic.png` segments) work.
 */
import { Effect } from "effect";
import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import { encodePng, gradient, put, withTempDir } from "./data_fixtures.ts";
import type { CocoDataset } from "../data/coco.ts";
import { problemLine } from "../data/errors.ts";
import { openDataset } from "../data/open.ts";
import { cocoPanoptic } from "../dsl/dataset.ts";

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect);

const w = 3, h = 2;
const rgbOf = (ids: readonly number[]) => ids.flatMap((id) => [id & 255, (id >> 8) & 255, id >> 16]);

/**
 * Two frames whose panoptic PNGs are named unlike their images; the annotations are listed in the other
 * order than the images, with image ids unrelated to positions. Frame 1 is person (id 5) over sky (id 9);
 * frame 2 is all sky (id 3). Frame 1's semantic mask is named after its image, frame 2's after its
 * panoptic PNG.
 */
const cityscapesStyle = async (root: string) => {
  const frames = ["aachen_000001_000019", "aachen_000002_000019"];
  for (const [i, f] of frames.entries()) {
    await put(
      join(root, "images", "val", `${f}_leftImg8bit.png`),
      encodePng(w, h, "rgb8", gradient(w, h, i)),
    );
  }
  await put(
    join(root, "panoptic", "val", `${frames[0]}_gtFine_panoptic.png`),
    encodePng(w, h, "rgb8", rgbOf([5, 5, 9, 9, 9, 0])),
  );
  await put(
    join(root, "panoptic", "val", `${frames[1]}_gtFine_panoptic.png`),
    encodePng(w, h, "rgb8", rgbOf([3, 3, 3, 3, 3, 3])),
  );
  await put(
    join(root, "semantic", "val", `${frames[0]}_leftImg8bit.png`),
    encodePng(w, h, "grey8", [24, 24, 23, 23, 23, 0]),
  );
  await put(
    join(root, "semantic", "val", `${frames[1]}_gtFine_panoptic.png`),
    encodePng(w, h, "grey8", [23, 23, 23, 23, 23, 23]),
  );
  const json = {
    images: [
      { id: 701, file_name: `${frames[0]}_leftImg8bit.png`, width: w, height: h },
      { id: 702, file_name: `${frames[1]}_leftImg8bit.png`, width: w, height: h },
    ],
    annotations: [
      {
        image_id: 702,
        file_name: `${frames[1]}_gtFine_panoptic.png`,
        segments_info: [{ id: 3, category_id: 23, iscrowd: 0, area: 6 }],
      },
      {
        image_id: 701,
        file_name: `${frames[0]}_gtFine_panoptic.png`,
        segments_info: [
          { id: 5, category_id: 24, iscrowd: 0, area: 2 },
          { id: 9, category_id: 23, iscrowd: 0, area: 3 },
        ],
      },
    ],
    categories: [{ id: 23, name: "sky", isthing: 0 }, { id: 24, name: "person", isthing: 1 }],
  };
  await put(join(root, "panoptic", "panoptic_val.json"), JSON.stringify(json));
  return { frames, json };
};

Deno.test("COCO panoptic: images pair with their PNGs through image_id, whatever the file names", () =>
  withTempDir(async (root) => {
    const { frames } = await cityscapesStyle(root);
    const d = (await run(openDataset(cocoPanoptic({ root, testSplit: "val" }), "val"))) as CocoDataset;
    assertEquals(d.problems.map(problemLine), []);
    assertEquals(d.samples.map((s) => s.id), frames.map((f) => `${f}_leftImg8bit`));
    assertEquals(d.samples.map((s) => s.mask), [
      join(root, "semantic", "val", `${frames[0]}_leftImg8bit.png`),
      join(root, "semantic", "val", `${frames[1]}_gtFine_panoptic.png`),
    ]);
    const [first, second] = await Promise.all(d.samples.map((s) => run(d.readPanoptic(s))));
    assertEquals(first.segments.map((s) => [s.id, s.categoryId, s.category, s.isThing, s.area]), [
      [5, 24, 1, true, 2],
      [9, 23, 0, false, 3],
    ]);
    assertEquals(second.segments.map((s) => [s.id, s.categoryId, s.area]), [[3, 23, 6]]);
    assertEquals(Array.from((await run(d.read(d.samples[0]))).labels), [1, 1, 0, 0, 0, 255]);
  }));

Deno.test("COCO panoptic: an image the JSON does not annotate, and an annotation of an image not in the split", () =>
  withTempDir(async (root) => {
    const { frames, json } = await cityscapesStyle(root);
    const extra = "bochum_000000_000313_leftImg8bit.png";
    await put(join(root, "images", "val", extra), encodePng(w, h, "rgb8", gradient(w, h, 7)));
    await put(join(root, "semantic", "val", extra), encodePng(w, h, "grey8", [23, 23, 23, 23, 23, 23]));
    const jsonFile = join(root, "panoptic", "panoptic_val.json");
    // Frame 2's image entry is renamed, so its annotation points at an image that is not in the folder.
    const renamed = { ...json, images: [json.images[0], { ...json.images[1], file_name: "elsewhere.png" }] };
    await put(jsonFile, JSON.stringify(renamed));
    const d = (await run(openDataset(cocoPanoptic({ root, testSplit: "val" }), "val"))) as CocoDataset;
    assertEquals(d.samples.map((s) => s.id), [`${frames[0]}_leftImg8bit`]);
    assertEquals(d.problems.map(problemLine), [
      `${join(root, "images", "val", `${frames[1]}_leftImg8bit.png`)}: no panoptic annotation in ${jsonFile}`,
      `${join(root, "images", "val", extra)}: no panoptic annotation in ${jsonFile}`,
      `${jsonFile}: ${frames[1]}_gtFine_panoptic.png: annotation for an image not in val (elsewhere.png)`,
    ]);
  }));
