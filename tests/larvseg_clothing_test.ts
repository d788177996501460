/**
 * LarvSeg on ccp with clothing/ as the image-level source: the novel-class rule (a hand case, and the
 * counts it reads recounted from the data), and the row specs it feeds.
 */
import { Effect } from "effect";
import { readFileSync } from "node:fs";
import { assertEquals } from "./assert.ts";
import { loadExperiment } from "../dsl/experiment.ts";
import { imageLevelSources } from "../dsl/dataset.ts";
import { openDataset } from "../data/open.ts";
import { imageLabelsOf } from "../data/labels.ts";
import { CCP_CLASSES, CLOTHING_CLASS_IMAGES, clothingNovelClasses } from "../experiments/larvseg/grid.ts";

Deno.test("clothing novel-class rule: enough photos and val images, then the fewest ccp train masks, ties by id", () => {
  const counts = {
    shoes: { clothing: 200, train: 600, val: 100 },
    hat: { clothing: 150, train: 80, val: 20 },
    blazer: { clothing: 120, train: 50, val: 12 },
    "t-shirt": { clothing: 200, train: 50, val: 15 }, // ties with blazer: blazer has the lower id (4 < 51)
    hoodie: { clothing: 100, train: 2, val: 0 }, // too few val images
    blouse: { clothing: 20, train: 10, val: 40 }, // too few photos
  };
  assertEquals(clothingNovelClasses(counts, { k: 3 }), ["blazer", "t-shirt", "hat"]);
  assertEquals(clothingNovelClasses(counts, { k: 3, minVal: 0 }), ["hoodie", "blazer", "t-shirt"]);
  // With the checked-in counts: 9 eligible classes, the 4 with the fewest train masks.
  assertEquals(clothingNovelClasses(), ["shorts", "blazer", "t-shirt", "hat"]);
});

Deno.test("clothing novel-class rule: the checked-in counts are the data's", async () => {
  const clothing = JSON.parse(readFileSync("../shared/data/clothing/labels.json", "utf8")) as {
    labels: Record<string, number[]>;
  };
  const photos = new Map<number, number>();
  for (const [c] of Object.values(clothing.labels)) photos.set(c, (photos.get(c) ?? 0) + 1);
  const e = await Effect.runPromise(loadExperiment("experiments/larvseg/ccp+clothing-seg-only.ts"));
  const { hidden: _, ...spec } = e.data.dataset;
  const imagesPerClass = async (split: string) => {
    const d = await Effect.runPromise(openDataset(spec, split));
    const per = new Array<number>(59).fill(0);
    for (const s of d.samples) {
      const raw = await Effect.runPromise(d.read(s));
      imageLabelsOf(raw.labels, 59).forEach((x, c) => (per[c] += x));
    }
    return per;
  };
  const [train, val] = [await imagesPerClass("train"), await imagesPerClass("val")];
  const counted = Object.fromEntries(
    [...photos.keys()].sort((a, b) => a - b).map((c) => [
      CCP_CLASSES[c],
      { clothing: photos.get(c)!, train: train[c], val: val[c] },
    ]),
  );
  assertEquals(counted, CLOTHING_CLASS_IMAGES);
});

Deno.test("ccp+clothing rows: the rule's classes hidden and novel, clothing/ a partial source in the image-level rows", async () => {
  const novel = [...clothingNovelClasses()];
  for (const row of ["seg-only", "image-level", "ca-cross"]) {
    const e = await Effect.runPromise(loadExperiment(`experiments/larvseg/ccp+clothing-${row}.ts`));
    assertEquals([e.data.dataset.hidden, e.eval.novel], [novel, novel]);
    const sources = imageLevelSources(e.data.imageLevel);
    assertEquals(
      sources.map((s) => [s.labels, s.ratio, s.semantics]),
      row === "seg-only" ? [] : [["../shared/data/clothing/labels.json", 0.5, "partial"]],
    );
  }
});
