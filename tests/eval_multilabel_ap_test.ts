import { assertClose, assertEquals, assertThrowsMessage } from "./assert.ts";
import { averagePrecision, multilabelAccumulator } from "../eval/multilabel_ap.ts";

Deno.test("averagePrecision: mean precision at the rank of each positive", () => {
  // Ranked scores 0.9 .. 0.5 with positives at ranks 1, 3, 5: (1/1 + 2/3 + 3/5) / 3 = 34/45.
  assertClose(averagePrecision([0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 0, 1]), 34 / 45);
  // Positives ranked first (order of insertion does not matter, scores do): AP 1.
  assertClose(averagePrecision([0.1, 0.4, 0.35, 0.8, 0.2], [0, 1, 0, 1, 0]), 1);
  // The only positive ranked last of two: 1/2.
  assertClose(averagePrecision([0.9, 0.1], [0, 1]), 0.5);
  assertEquals(Number.isNaN(averagePrecision([0.3, 0.2], [0, 0])), true);
});

Deno.test("averagePrecision with tied scores: one threshold per distinct score (scikit-learn's rule)", () => {
  // Two images tied at 0.5, one positive: one threshold, precision 1/2 at recall 1, whichever comes first.
  assertClose(averagePrecision([0.5, 0.5], [0, 1]), 0.5);
  assertClose(averagePrecision([0.5, 0.5], [1, 0]), 0.5);
  // Scores 0.9 (neg) | 0.5, 0.5, 0.5 (pos, pos, neg) | 0.1 (pos); P = 3. Thresholds, descending:
  //   0.9: tp 0 of 1 -> recall 0
  //   0.5: tp 2 of 4 -> precision 2/4, recall 2/3
  //   0.1: tp 3 of 5 -> precision 3/5, recall 1
  // AP = (2/3 - 0)·(1/2) + (1 - 2/3)·(3/5) = 1/3 + 1/5 = 8/15. (Ranking ties in insertion order gave
  // (1/2 + 2/3 + 3/5) / 3 = 53/90, above the standard value.)
  assertClose(averagePrecision([0.9, 0.5, 0.5, 0.5, 0.1], [0, 1, 1, 0, 1]), 8 / 15);
  assertClose(averagePrecision([0.9, 0.5, 0.5, 0.5, 0.1], [0, 0, 1, 1, 1]), 8 / 15);
  // Every score tied: precision P / N at recall 1.
  assertClose(averagePrecision([0.2, 0.2, 0.2, 0.2], [1, 0, 0, 1]), 0.5);
});

Deno.test("mAP with tied scores does not depend on the order of the images", () => {
  // Class 0 is the 8/15 case above; class 1 ties everything (AP 2/5); class 2 has distinct scores.
  const images: [number[], number[]][] = [
    [[0.9, 0.3, 0.9], [0, 1, 1]],
    [[0.5, 0.3, 0.8], [1, 0, 0]],
    [[0.5, 0.3, 0.7], [1, 1, 1]],
    [[0.5, 0.3, 0.6], [0, 0, 0]],
    [[0.1, 0.3, 0.5], [1, 0, 1]],
  ];
  // Class 2: positives at ranks 1, 3, 5 of distinct scores: (1 + 2/3 + 3/5) / 3 = 34/45.
  const expected = [8 / 15, 2 / 5, 34 / 45];
  const orders = [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0, 4, 1, 3], [3, 1, 0, 4, 2]];
  const results = orders.map((order) => {
    const acc = multilabelAccumulator({ numClasses: 3 });
    for (const i of order) acc.add(images[i][0], images[i][1]);
    return acc.summary();
  });
  assertClose(Array.from(results[0].ap), expected);
  assertClose(results[0].mAP, (100 * (8 / 15 + 2 / 5 + 34 / 45)) / 3);
  for (const r of results.slice(1)) {
    assertEquals(Array.from(r.ap), Array.from(results[0].ap));
    assertEquals(r.mAP, results[0].mAP);
  }
});

Deno.test("mAP over the dataset skips classes without positives and is x100", () => {
  // Class 0: AP 34/45 and class 1: AP 1 (the cases above); class 2 has no positive and is skipped.
  // mAP = 100 * (34/45 + 1) / 2 = 100 * 79/90.
  const scores0 = [0.9, 0.8, 0.7, 0.6, 0.5];
  const targets0 = [1, 0, 1, 0, 1];
  const scores1 = [0.1, 0.4, 0.35, 0.8, 0.2];
  const targets1 = [0, 1, 0, 1, 0];
  const acc = multilabelAccumulator({ numClasses: 3 });
  for (let i = 0; i < 5; i++) {
    acc.add([scores0[i], scores1[i], 0.5], Uint8Array.from([targets0[i], targets1[i], 0]));
  }
  const { ap, mAP } = acc.summary();
  assertClose(Array.from(ap).slice(0, 2), [34 / 45, 1]);
  assertEquals(Number.isNaN(ap[2]), true);
  assertClose(mAP, (100 * 79) / 90);
  assertEquals(acc.imageCount(), 5);
});

Deno.test("mAP accumulator keeps every image when it grows", () => {
  // 200 images, one class; positives are the images with index % 4 == 0 and get the highest scores,
  // so AP = 1; then one negative with the top score pushes every positive down one rank:
  // AP = mean over k = 1..50 of k / (k + 1).
  const acc = multilabelAccumulator({ numClasses: 1 });
  for (let i = 0; i < 200; i++) acc.add([i % 4 === 0 ? 1 + i : -i], [i % 4 === 0 ? 1 : 0]);
  assertClose(acc.summary().mAP, 100);
  acc.add([1e9], [0]);
  let expected = 0;
  for (let k = 1; k <= 50; k++) expected += k / (k + 1);
  assertClose(acc.summary().mAP, (100 * expected) / 50);
});

Deno.test("mAP is NaN when no class has a positive", () => {
  const acc = multilabelAccumulator({ numClasses: 2 });
  acc.add([0.1, 0.2], [0, 0]);
  assertEquals(Number.isNaN(acc.summary().mAP), true);
});

Deno.test("multilabel errors name the argument", () => {
  const acc = multilabelAccumulator({ numClasses: 2 });
  assertThrowsMessage(() => acc.add([0.1], [0, 1]), "multilabel: scores: has 1 entries, expected 2");
  assertThrowsMessage(() => acc.add([0.1, 0.2], [0]), "multilabel: targets: has 1 entries, expected 2");
  assertThrowsMessage(() => acc.add([0.1, NaN], [0, 1]), "scores: class 1 of image 0 is NaN");
  assertThrowsMessage(
    () => multilabelAccumulator({ numClasses: 1.5 }),
    "numClasses: must be a positive integer",
  );
  assertThrowsMessage(
    () => averagePrecision([1, 2], [1]),
    "averagePrecision: scores: has 2 entries but targets has 1",
  );
});
