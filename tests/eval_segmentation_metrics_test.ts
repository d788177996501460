import { assertClose, assertEquals, assertThrowsMessage } from "./assert.ts";
import {
  intersectAndUnion,
  mergeAreaCounts,
  segmentationAccumulator,
  summarizeAreas,
} from "../eval/segmentation_metrics.ts";

const IGNORE = 255;

// One image, K = 4, ten pixels:
//   label  0  0  0  1  1  1  255 255  0  1
//   pred   0  0  1  1  1  2   2   2   9 -1
// Ignored pixels (label 255) are dropped even though class 2 is predicted there. The predictions 9 and
// -1 are outside 0..3: they add to no class, but their pixels still count in the label areas.
//   intersect [2, 2, 0, 0]   pred area [2, 3, 1, 0]   label area [4, 4, 0, 0]   union [4, 5, 1, 0]
//   IoU [2/4, 2/5, 0/1, NaN]: class 2 is predicted but absent from GT (IoU 0, counted); class 3 is in
//   neither (NaN, skipped) -> mIoU = (0.5 + 0.4 + 0) / 3 = 0.3
//   Acc [2/4, 2/4, NaN, NaN] -> mAcc = 0.5;  aAcc = 4 / 8 = 0.5
const label = Int32Array.from([0, 0, 0, 1, 1, 1, 255, 255, 0, 1]);
const pred = Int32Array.from([0, 0, 1, 1, 1, 2, 2, 2, 9, -1]);

Deno.test("intersectAndUnion drops ignore pixels and out-of-range predictions like mmseg", () => {
  const areas = intersectAndUnion(pred, label, 4, IGNORE);
  assertEquals(Array.from(areas.intersect), [2, 2, 0, 0]);
  assertEquals(Array.from(areas.predArea), [2, 3, 1, 0]);
  assertEquals(Array.from(areas.labelArea), [4, 4, 0, 0]);
  assertEquals(Array.from(areas.union), [4, 5, 1, 0]);
});

Deno.test("summary: absent class is NaN and skipped, predicted-only class counts as IoU 0", () => {
  const s = summarizeAreas(intersectAndUnion(pred, label, 4, IGNORE));
  assertClose(Array.from(s.iou).slice(0, 3), [0.5, 0.4, 0]);
  assertEquals(Number.isNaN(s.iou[3]), true);
  assertClose(Array.from(s.acc).slice(0, 2), [0.5, 0.5]);
  assertEquals([Number.isNaN(s.acc[2]), Number.isNaN(s.acc[3])], [true, true]);
  assertClose(s.mIoU, 0.3);
  assertClose(s.mAcc, 0.5);
  assertClose(s.aAcc, 0.5);
});

Deno.test("dataset-level mIoU differs from the mean of per-image mIoUs", () => {
  // K = 2. Image A: label [0, 1], pred [0, 0]   -> IoU [1/2, 0/1], mIoU 0.25
  //        Image B: label 1 x 8, pred 1 x 8      -> IoU [NaN, 8/8], mIoU 1
  // Mean of per-image mIoU = 0.625. Dataset: class 0: I 1, U 2 -> 1/2; class 1: I 8, U 9 -> 8/9;
  // mIoU = (1/2 + 8/9) / 2 = 25/36; aAcc = 9 / 10.
  const imageA = { pred: Uint8Array.from([0, 0]), label: Int32Array.from([0, 1]) };
  const imageB = { pred: new Uint8Array(8).fill(1), label: new Int32Array(8).fill(1) };
  const acc = segmentationAccumulator({ numClasses: 2, ignoreIndex: IGNORE });
  acc.add(imageA.pred, imageA.label);
  acc.add(imageB.pred, imageB.label);
  const perImage = [imageA, imageB].map((im) =>
    summarizeAreas(intersectAndUnion(im.pred, im.label, 2, IGNORE)).mIoU
  );
  assertClose(perImage, [0.25, 1]);
  const dataset = acc.summary();
  assertClose(Array.from(dataset.iou), [1 / 2, 8 / 9]);
  assertClose(dataset.mIoU, 25 / 36);
  assertClose(dataset.aAcc, 0.9);
  assertEquals(acc.imageCount(), 2);
  // Merging per-worker counts gives the same totals as one accumulator.
  const merged = mergeAreaCounts(
    intersectAndUnion(imageA.pred, imageA.label, 2, IGNORE),
    intersectAndUnion(imageB.pred, imageB.label, 2, IGNORE),
  );
  assertEquals(merged, acc.counts());
});

Deno.test("an image of only ignore pixels adds nothing", () => {
  const acc = segmentationAccumulator({ numClasses: 3, ignoreIndex: 11 });
  acc.add(Int32Array.from([0, 1, 2]), Int32Array.from([11, 11, 11]));
  const s = acc.summary();
  assertEquals(Array.from(s.iou).every(Number.isNaN), true);
  assertEquals([Number.isNaN(s.mIoU), Number.isNaN(s.aAcc)], [true, true]);
});

Deno.test("segmentation errors name the argument and the mismatch", () => {
  const acc = segmentationAccumulator({ numClasses: 2, ignoreIndex: IGNORE });
  assertThrowsMessage(
    () => acc.add(new Int32Array(3), new Int32Array(4)),
    "pred: has 3 pixels but label has 4",
  );
  assertThrowsMessage(
    () => segmentationAccumulator({ numClasses: 0, ignoreIndex: 0 }),
    "numClasses: must be a positive integer",
  );
  assertThrowsMessage(
    () =>
      mergeAreaCounts(intersectAndUnion(pred, label, 4, IGNORE), intersectAndUnion(pred, label, 3, IGNORE)),
    "class counts differ: 3 vs 4",
  );
});

Deno.test("the accumulator counts the images holding each class; the eval record names the classes in every image", async () => {
  const { makeEvalRecord } = await import("../eval/eval_record.ts");
  // K = 4: class 0 in both images, class 1 in the first only, class 2 only predicted, class 3 nowhere.
  const acc = segmentationAccumulator({ numClasses: 4, ignoreIndex: IGNORE });
  acc.add(Int32Array.from([0, 1, 2]), Int32Array.from([0, 1, 255]));
  acc.add(Int32Array.from([0, 2]), Int32Array.from([0, 0]));
  const s = acc.summary();
  assertEquals([s.images, Array.from(s.imagesPerClass ?? [])], [2, [2, 1, 0, 0]]);
  const record = (segmentation: typeof s) =>
    makeEvalRecord({
      split: "val",
      images: 2,
      step: 1,
      checkpoint: "c",
      mode: "whole",
      classNames: ["a", "b", "c", "d"],
      segmentation,
      mAP: 100,
    });
  assertEquals([record(s).classesInEveryImage, record(s).classesPresent], [["a"], 2]);
  // Every class that occurs is in every image: then mAP is 100 whatever the scores.
  const all = segmentationAccumulator({ numClasses: 2, ignoreIndex: IGNORE });
  all.add(Int32Array.from([0, 0]), Int32Array.from([0, 1]));
  all.add(Int32Array.from([1, 1]), Int32Array.from([1, 0]));
  const r = makeEvalRecord({
    split: "val",
    images: 2,
    step: 1,
    checkpoint: "c",
    mode: "whole",
    classNames: ["a", "b"],
    segmentation: all.summary(),
    mAP: 100,
  });
  assertEquals([r.classesInEveryImage, r.classesPresent], [["a", "b"], 2]);
});
