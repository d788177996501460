import { assertClose, assertEquals, assertThrowsMessage } from "./assert.ts";
import { panopticAccumulator } from "../eval/panoptic_quality.ts";

const categories = [
  { id: 1, name: "person", isThing: true },
  { id: 2, name: "car", isThing: true },
  { id: 3, name: "sky", isThing: false },
  { id: 4, name: "road", isThing: false }, // never occurs: reported as null, not averaged
];

/** An id map of `length` pixels from [id, from, to) runs; the rest is 0 (void). */
const ids = (length: number, runs: [number, number, number][]) => {
  const out = new Int32Array(length);
  for (const [id, from, to] of runs) out.fill(id, from, to);
  return out;
};

// Image 1 (20 pixels):
//   GT    person#10 [0, 8)   sky#11 [8, 16)   void [16, 20)
//   pred  person#1 [0, 5) + [16, 20) (4 px on void)   void [5, 8)   sky#2 [8, 12)   car#3 [12, 16)
//   person: I 5, union 9 + 8 - 5 - 4 (void) = 8, IoU 5/8 > 0.5 -> TP (without the void rule 5/12: no match)
//   sky: I 4, union 4 + 8 - 4 = 8, IoU 4/8 is not > 0.5 -> gt#11 FN, pred#2 FP
//   car#3 lies on sky -> FP
const image1 = {
  gt: {
    ids: ids(20, [[10, 0, 8], [11, 8, 16]]),
    segments: [{ id: 10, category: 1 }, { id: 11, category: 3 }],
  },
  pred: {
    ids: ids(20, [[1, 0, 5], [1, 16, 20], [2, 8, 12], [3, 12, 16]]),
    segments: [{ id: 1, category: 1 }, { id: 2, category: 3 }, { id: 3, category: 2 }],
  },
};

// Image 2 (20 pixels), crowd:
//   GT    person crowd#5 [0, 10)   person#6 [10, 16)   sky#7 [16, 20)
//   pred  person#1 [0, 6) (all on the person crowd: ignored, not FP)
//         car#2 [6, 10) (on a crowd of another category: FP)
//         person#3 [10, 15): I 5, union 5 + 6 - 5 = 6, IoU 5/6 -> TP;  void [15, 16)
//         sky#4 [16, 20): IoU 1 -> TP.  The crowd GT is never a false negative.
const image2 = {
  gt: {
    ids: ids(20, [[5, 0, 10], [6, 10, 16], [7, 16, 20]]),
    segments: [{ id: 5, category: 1, iscrowd: 1 }, { id: 6, category: 1 }, { id: 7, category: 3 }],
  },
  pred: {
    ids: ids(20, [[1, 0, 6], [2, 6, 10], [3, 10, 15], [4, 16, 20]]),
    segments: [{ id: 1, category: 1 }, { id: 2, category: 2 }, { id: 3, category: 1 }, {
      id: 4,
      category: 3,
    }],
  },
};

Deno.test("PQ over two images with void, crowd and an IoU of exactly 0.5", () => {
  const acc = panopticAccumulator({ categories });
  acc.add(image1.pred, image1.gt);
  acc.add(image2.pred, image2.gt);
  const counts = acc.counts();
  assertEquals(counts.get(1), { tp: 2, fp: 0, fn: 0, iouSum: 5 / 8 + 5 / 6 });
  assertEquals(counts.get(2), { tp: 0, fp: 2, fn: 0, iouSum: 0 });
  assertEquals(counts.get(3), { tp: 1, fp: 1, fn: 1, iouSum: 1 });
  assertEquals(counts.get(4), { tp: 0, fp: 0, fn: 0, iouSum: 0 });

  // person: Σiou = 35/24, PQ = SQ = 35/48, RQ = 1;  car: all 0;  sky: PQ = 1/(1 + 1/2 + 1/2) = 1/2,
  // SQ = 1, RQ = 1/2;  road: null.
  const s = acc.summary();
  const [person, car, sky, road] = s.perCategory;
  assertClose([person.pq!, person.sq!, person.rq!], [35 / 48, 35 / 48, 1]);
  assertClose([car.pq!, car.sq!, car.rq!], [0, 0, 0]);
  assertClose([sky.pq!, sky.sq!, sky.rq!], [1 / 2, 1, 1 / 2]);
  assertEquals([road.pq, road.sq, road.rq, road.name], [null, null, null, "road"]);
  // All: mean over the 3 occurring categories; Things: person, car; Stuff: sky.
  assertClose([s.all.pq, s.all.sq, s.all.rq], [59 / 144, 83 / 144, 1 / 2]);
  assertEquals(s.all.n, 3);
  assertClose([s.things.pq, s.things.sq, s.things.rq], [35 / 96, 35 / 96, 1 / 2]);
  assertEquals(s.things.n, 2);
  assertClose([s.stuff.pq, s.stuff.sq, s.stuff.rq], [1 / 2, 1, 1 / 2]);
  assertEquals(s.stuff.n, 1);
});

Deno.test("a prediction exactly half on void is a false positive; more than half is ignored", () => {
  // GT: sky [0, 4), void [4, 8).  pred car [2, 6): 2 of 4 px on void -> not > 1/2 -> FP.
  const gt = { ids: ids(8, [[1, 0, 4]]), segments: [{ id: 1, category: 3 }] };
  const half = panopticAccumulator({ categories });
  half.add({ ids: ids(8, [[9, 2, 6]]), segments: [{ id: 9, category: 2 }] }, gt);
  assertEquals(half.counts().get(2)!.fp, 1);
  // pred car [3, 7): 3 of 4 px on void -> ignored.
  const most = panopticAccumulator({ categories });
  most.add({ ids: ids(8, [[9, 3, 7]]), segments: [{ id: 9, category: 2 }] }, gt);
  assertEquals(most.counts().get(2)!.fp, 0);
  assertEquals(most.counts().get(3)!.fn, 1);
});

Deno.test("groups with no occurring category give NaN and n = 0", () => {
  const acc = panopticAccumulator({ categories });
  acc.add({ ids: ids(4, [[1, 0, 4]]), segments: [{ id: 1, category: 3 }] }, {
    ids: ids(4, [[1, 0, 4]]),
    segments: [{ id: 1, category: 3 }],
  });
  const s = acc.summary();
  assertClose([s.stuff.pq, s.all.pq], [1, 1]);
  assertEquals([Number.isNaN(s.things.pq), s.things.n], [true, 0]);
});

Deno.test("PQ errors name the field, image and segment", () => {
  const acc = panopticAccumulator({ categories });
  const gt = { ids: ids(4, [[1, 0, 4]]), segments: [{ id: 1, category: 3 }] };
  assertThrowsMessage(
    () => acc.add({ ids: ids(4, [[7, 0, 4]]), segments: [] }, gt),
    "panoptic: prediction.ids: image 0: segment id 7 is in the map but not in the segment list",
  );
  assertThrowsMessage(
    () => acc.add({ ids: ids(4, []), segments: [{ id: 2, category: 3 }] }, gt),
    "prediction.segments: image 0: segment 2 is listed but has no pixels in the map",
  );
  assertThrowsMessage(
    () => acc.add({ ids: ids(4, [[2, 0, 4]]), segments: [{ id: 2, category: 99 }] }, gt),
    "prediction.segments: image 0: segment 2 has unknown category 99",
  );
  assertThrowsMessage(
    () => acc.add({ ids: ids(4, []), segments: [{ id: 0, category: 3 }] }, gt),
    "segment id 0 is the void id",
  );
  assertThrowsMessage(
    () => acc.add({ ids: ids(4, []), segments: [] }, { ids: ids(4, [[3, 0, 1]]), segments: [] }),
    "groundTruth.ids: image 0: segment id 3 is in the map but not in the segment list",
  );
  assertThrowsMessage(
    () => acc.add({ ids: ids(3, []), segments: [] }, gt),
    "prediction.ids: image 0: has 3 pixels but groundTruth.ids has 4",
  );
  assertThrowsMessage(
    () =>
      acc.add({ ids: ids(4, [[2, 0, 4]]), segments: [{ id: 2, category: 3 }, { id: 2, category: 3 }] }, gt),
    "segment id 2 is listed twice",
  );
  assertThrowsMessage(
    () => panopticAccumulator({ categories: [...categories, { id: 1, isThing: false }] }),
    "panoptic: categories: a category id is listed twice",
  );
  // Rejected images leave the totals untouched.
  assertEquals(acc.counts().get(3), { tp: 0, fp: 0, fn: 0, iouSum: 0 });
});
