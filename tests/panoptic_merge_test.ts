/** Mask-wise merging on a hand-made 1 × 6 image, and its output scored by the PQ code. */
import { assertClose, assertEquals, assertThrowsMessage } from "./assert.ts";
import { mergePanoptic } from "../eval/panoptic_merge.ts";
import { panopticAccumulator } from "../eval/panoptic_quality.ts";

// K = 2: class 0 "person" (thing), class 1 "sky" (stuff); N = 5 queries; 6 pixels in a row.
const IS_THING = [true, false];
const SIZE = { queries: 5, classes: 2, pixels: 6 };
const CLASS_LOGITS = [
  ...[3, 0, 0], // q0 person, confidence e³/(e³ + 2) = 0.909
  ...[0, 2, 0], // q1 sky, e²/(e² + 2) = 0.787
  ...[0, 1, 0], // q2 sky, e/(e + 2) = 0.576 (≥ 0.5: a stuff query is kept)
  ...[1, 0, 0], // q3 person, 0.576 (< 0.7: a thing query is not)
  ...[4, 0, 0], // q4 person, e⁴/(e⁴ + 2) = 0.965
];
// A logit of 10 against 0 wins a pixel with p ≈ 1; two queries at 10 share it at p ≈ 1/2 (> 0.4).
const MASK_LOGITS = [
  ...[10, 10, 0, 0, 0, 0], // q0: pixels 0, 1 (pixel 0 shared with q4): mean p 0.75, score 0.682
  ...[0, 0, 0, 10, 10, 0], // q1: pixels 3, 4: score 0.787
  ...[0, 0, 0, 0, 0, 10], // q2: pixel 5: score 0.576
  ...[0, 0, 10, 0, 0, 0], // q3: pixel 2 (shared with q4)
  ...[10, 0, 10, 0, 0, 0], // q4: pixels 0, 2, mean p 1/2: score 0.482
];
const conf = (top: number) => Math.exp(top) / (Math.exp(top) + 2);

Deno.test("merge: paste by score, thing/stuff thresholds, overlap rule, same-class stuff joins", () => {
  const { ids, segments } = mergePanoptic(CLASS_LOGITS, MASK_LOGITS, SIZE, IS_THING);
  // q1 (sky) → id 1 on pixels 3, 4; q0 (person) → id 2 on 0, 1; q2 (sky) joins id 1 on pixel 5;
  // q4: only pixel 2 of its 2 is free (1/2 ≤ 0.8): rejected; q3: confidence 0.576 < 0.7: rejected.
  assertEquals(Array.from(ids), [2, 2, 0, 1, 1, 1]);
  assertEquals(segments.map((s) => [s.id, s.category, s.isThing, s.area]), [[1, 1, false, 3], [
    2,
    0,
    true,
    2,
  ]]);
  assertClose(segments.map((s) => s.score), [conf(2), conf(3)]);
  // minArea 2 drops q2's single free pixel. A thing threshold of 0.5 admits q3, pasted last (score
  // 0.576 × 1/2): q4 is still rejected, and pixel 2 is all of q3's mask and free.
  assertEquals(Array.from(mergePanoptic(CLASS_LOGITS, MASK_LOGITS, SIZE, IS_THING, { minArea: 2 }).ids), [
    2,
    2,
    0,
    1,
    1,
    0,
  ]);
  const lenient = mergePanoptic(CLASS_LOGITS, MASK_LOGITS, SIZE, IS_THING, { thingThreshold: 0.5 });
  assertEquals(Array.from(lenient.ids), [2, 2, 3, 1, 1, 1]); // q3 → id 3 on pixel 2
  assertThrowsMessage(
    () => mergePanoptic(CLASS_LOGITS, MASK_LOGITS, { ...SIZE, pixels: 5 }, IS_THING),
    "expected 5×3 class logits, 5×5 mask logits and 2 isThing flags, got 15, 30 and 2",
  );
});

Deno.test("merge → PQ: the merged map scored against ground truth by panopticapi's rules", () => {
  const merged = mergePanoptic(CLASS_LOGITS, MASK_LOGITS, SIZE, IS_THING);
  // Ground truth: person A on pixels 0, 1; person B on pixel 2; sky on 3–5.
  const pq = panopticAccumulator({ categories: [{ id: 0, isThing: true }, { id: 1, isThing: false }] });
  pq.add(
    { ids: merged.ids, segments: merged.segments },
    {
      ids: Int32Array.of(1, 1, 2, 3, 3, 3),
      segments: [{ id: 1, category: 0 }, { id: 2, category: 0 }, { id: 3, category: 1 }],
    },
  );
  const s = pq.summary();
  // person: A matched (IoU 1), B missed: PQ = 1 / (1 + ½) = 2/3; sky: IoU 1: PQ 1.
  assertClose([s.things.pq, s.stuff.pq, s.all.pq, s.all.sq], [2 / 3, 1, 5 / 6, 1]);
  assertEquals(s.perCategory.map((c) => [c.tp, c.fp, c.fn]), [[1, 0, 1], [1, 0, 0]]);
});
