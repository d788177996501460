/**
 * Panoptic targets: one mask per thing instance and per stuff class, crowd/void/ignored classes without
 * a mask, padding, truncation beyond maxMasks (counted and reported), on a hand-made map and on coco133.
 */
import { Effect } from "effect";
import { assert, assertEquals, assertThrowsMessage } from "./assert.ts";
import { coco133 } from "../dsl/datasets.ts";
import type { CocoDataset } from "../data/coco.ts";
import { openDataset } from "../data/open.ts";
import {
  countTruncation,
  NO_TRUNCATION,
  panopticTargets,
  stackTargets,
  type TargetSegment,
  truncationReport,
} from "../data/panoptic_targets.ts";

// 4 × 5 segment-id map. 1, 2: two instances of thing class 7; 3 and 5: stuff class 20 (merge);
// 4: a crowd region of class 7; 6: a stuff segment whose class the dataset ignores (255).
const MAP = Int32Array.of(
  ...[0, 1, 1, 2, 2],
  ...[3, 1, 1, 2, 2],
  ...[3, 3, 4, 4, 5],
  ...[6, 6, 4, 4, 5],
);
const SEGMENTS: TargetSegment[] = [
  { id: 1, category: 7, isThing: true, isCrowd: false },
  { id: 2, category: 7, isThing: true, isCrowd: false },
  { id: 3, category: 20, isThing: false, isCrowd: false },
  { id: 4, category: 7, isThing: true, isCrowd: true },
  { id: 5, category: 20, isThing: false, isCrowd: false },
  { id: 6, category: 255, isThing: false, isCrowd: false },
  { id: 9, category: 3, isThing: true, isCrowd: false }, // listed, but no pixels (e.g. cropped away)
];

Deno.test("panoptic targets: instances, merged stuff, crowd/void/ignored without a mask, padding", () => {
  const t = panopticTargets(MAP, SEGMENTS, { maxMasks: 4 });
  assertEquals(t.count, 3);
  assertEquals(Array.from(t.classes), [7, 7, 20, -1]);
  assertEquals(Array.from(t.isThing), [1, 1, 0, 0]);
  assertEquals(Array.from(t.areas), [4, 4, 5, 0]);
  assertEquals(Array.from(t.maskIds), [
    ...[-1, 0, 0, 1, 1],
    ...[2, 0, 0, 1, 1],
    ...[2, 2, -1, -1, 2],
    ...[-1, -1, -1, -1, 2],
  ]);
  assertEquals(Array.from(t.semantic), [
    ...[255, 7, 7, 7, 7],
    ...[20, 7, 7, 7, 7],
    ...[20, 20, 255, 255, 20],
    ...[255, 255, 255, 255, 20],
  ]);
  assertEquals(t.truncated, { masks: 0, pixels: 0 });
});

Deno.test("panoptic targets: more masks than maxMasks drops the smallest, counts and reports it", () => {
  // Areas 4, 4, 5: keep the stuff mask (5) and, of the tied instances, the first.
  const t = panopticTargets(MAP, SEGMENTS, { maxMasks: 2 });
  assertEquals(t.count, 2);
  assertEquals(Array.from(t.classes), [7, 20]);
  assertEquals(Array.from(t.areas), [4, 5]);
  assertEquals(Array.from(t.maskIds.slice(0, 10)), [-1, 0, 0, -1, -1, 1, 0, 0, -1, -1]);
  // The dropped instance keeps its semantic label.
  assertEquals(Array.from(t.semantic.slice(3, 5)), [7, 7]);
  assertEquals(t.truncated, { masks: 1, pixels: 4 });
  const totals = countTruncation(
    countTruncation(NO_TRUNCATION, t),
    panopticTargets(MAP, SEGMENTS, { maxMasks: 4 }),
  );
  assertEquals(totals, {
    images: 2,
    truncatedImages: 1,
    droppedMasks: 1,
    droppedPixels: 4,
    maskPixels: 26,
    mostMasks: 3,
  });
  assertEquals(
    truncationReport(totals, 2),
    "panoptic targets: 1 of 2 images had more than 2 ground-truth masks (most: 3); the 1 smallest were " +
      "dropped (15.38% of mask pixels), their pixels ignored by the mask losses",
  );
});

Deno.test("panoptic targets: stacked as int64 feeds, padding as the void class and mask id maxMasks", () => {
  const t = panopticTargets(MAP, SEGMENTS, { maxMasks: 4 });
  const batch = stackTargets([t, t], 133);
  assertEquals(Array.from(batch.counts), [3n, 3n]);
  assertEquals(Array.from(batch.classes.slice(0, 4)), [7n, 7n, 20n, 133n]);
  assertEquals(Array.from(batch.maskIds.slice(20, 25)), [4n, 0n, 0n, 1n, 1n]);
  assertEquals(batch.semantic[20], 255n);
  assertThrowsMessage(
    () => stackTargets([t, panopticTargets(MAP, SEGMENTS, { maxMasks: 2 })], 133),
    "image 1 has 2 masks × 20 pixels, image 0 4 × 20",
  );
});

Deno.test("panoptic targets: a map id without a segment, a duplicate id, a bad maxMasks", () => {
  const source = "panoptic/train2017/x.png";
  assertThrowsMessage(
    () => panopticTargets(MAP, SEGMENTS.slice(0, 5), { maxMasks: 4, source }),
    "segment id 6 is in the map but not listed",
  );
  assertThrowsMessage(
    () => panopticTargets(MAP, [...SEGMENTS, SEGMENTS[0]], { maxMasks: 4, source }),
    "segment id 1 is listed twice",
  );
  assertThrowsMessage(
    () => panopticTargets(MAP, SEGMENTS, { maxMasks: 0 }),
    "maxMasks must be a positive integer",
  );
});

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect);

Deno.test("panoptic targets on coco133: exact masks of two images, truncation over the 100 train images", async () => {
  const d = (await run(openDataset(coco133, "train2017"))) as CocoDataset;
  const byId = (id: string) => run(d.readPanoptic(d.samples.find((s) => s.id === id)!));

  // 000000000009: 3 bowls (45), 4 oranges (49), a broccoli (50), table (121), food-other (128); no crowd.
  const nine = await byId("000000000009");
  const t9 = panopticTargets(nine.segmentIds, nine.segments, { maxMasks: 16 });
  assertEquals(t9.count, 10);
  assertEquals(Array.from(t9.classes.slice(0, 10)), [45, 45, 45, 49, 49, 49, 49, 50, 121, 128]);
  assertEquals(Array.from(t9.areas.slice(0, 10)), nine.segments.map((s) => s.area));
  assertEquals(t9.areas.reduce((a, b) => a + b, 0), 289945); // every labelled pixel
  assertEquals(t9.maskIds.filter((m) => m < 0).length, 640 * 480 - 289945);

  // 000000000149: 27 segments, one of them crowd (class 0, person): 26 masks, the crowd pixels ignored.
  const p149 = await byId("000000000149");
  const crowd = p149.segments.find((s) => s.isCrowd)!;
  assertEquals(crowd.category, 0);
  const t149 = panopticTargets(p149.segmentIds, p149.segments, { maxMasks: 128 });
  assertEquals(t149.count, 26);
  for (let p = 0; p < p149.segmentIds.length; p++) {
    if (p149.segmentIds[p] !== crowd.id) continue;
    assert(t149.maskIds[p] === -1 && t149.semantic[p] === 255, `crowd pixel ${p}`);
  }

  // All 100 images: at most 47 masks; 16 queries would drop 193 masks in 22 images (0.31% of pixels).
  let [q16, q128] = [NO_TRUNCATION, NO_TRUNCATION];
  for (const s of d.samples) {
    const p = await run(d.readPanoptic(s));
    q16 = countTruncation(q16, panopticTargets(p.segmentIds, p.segments, { maxMasks: 16 }));
    q128 = countTruncation(q128, panopticTargets(p.segmentIds, p.segments, { maxMasks: 128 }));
  }
  assertEquals(q16, {
    images: 100,
    truncatedImages: 22,
    droppedMasks: 193,
    droppedPixels: 78378,
    maskPixels: 25487659,
    mostMasks: 47,
  });
  assertEquals(q128.droppedMasks, 0);
  assertEquals(
    truncationReport(q128, 128),
    "panoptic targets: no image had more than 128 ground-truth masks (most: 47, 100 images)",
  );
});
