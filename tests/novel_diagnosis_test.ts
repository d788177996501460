/**
 * Where LarvSeg's novel classes lose (eval/novel_diagnosis.ts, grids/novel_classes.ts): the per-pixel and
 * per-image statistics on hand-computed cases, the findings' verdicts, the runs it refuses, and the
 * predictor's logits it reads (their argmax is the predictor's class map).
 */
import { Effect } from "effect";
import { assert, assertClose, assertEquals, assertThrowsMessage } from "./assert.ts";
import { novelDiagnosisAccumulator } from "../eval/novel_diagnosis.ts";
import { type Diagnosed, findings, runTable } from "../grids/novel_classes.ts";
import { novelDiagnosisProblem as diagnosisProblem } from "../eval/novel_classes.ts";
import { makePredictor } from "../eval/predictor.ts";
import * as m from "../dsl/model.ts";
import { random } from "../core/random.ts";

const NAMES = ["a", "b", "n"];
const NOVEL = Uint8Array.from([0, 0, 1]);

/** Two images: 1×3 (labels a, n, n, then an ignored pixel's column left out) and 1×2 (b, ignored). */
const handCase = () => {
  const acc = novelDiagnosisAccumulator({ classNames: NAMES, novel: NOVEL, ignoreIndex: 255 });
  // [K, 1, 3]: pixel 0 (a) is won by a by 1; pixel 1 (n) is lost to b, rank 2, by 2; pixel 2 (n) is won by 1.
  acc.add(Float32Array.from([2, 0, 0, 1, 3, 1, 0, 1, 2]), Int32Array.from([0, 2, 2]), 1, 3);
  // [K, 1, 2]: pixel 0 (b) is won by 3.5; pixel 1 is ignored but counts in the image's mean logits.
  acc.add(Float32Array.from([0, 0, 5, 5, 1.5, 1.5]), Int32Array.from([1, 255]), 1, 2);
  return acc.summary();
};

Deno.test("novel diagnosis: pixels won, rank and margin per class group, by hand", () => {
  const d = handCase();
  assertEquals(d.images, 2);
  assertEquals(d.novel.pixels, 2);
  assertClose([d.novel.won, d.novel.classMeanWon, d.novel.meanRank, d.novel.meanMargin], [50, 50, 1.5, -0.5]);
  assertEquals(d.base.pixels, 2);
  assertClose([d.base.won, d.base.classMeanWon, d.base.meanRank, d.base.meanMargin], [100, 100, 1, 2.25]);
  // The novel pixel lost goes to b: half of all novel pixels.
  assertEquals(d.winners, [{ name: "b", share: 50 }]);
  assertEquals(d.classes.length, 1);
  assertEquals(d.classes[0].name, "n");
  assertEquals(d.classes[0].winner, { name: "b", share: 50 });
});

Deno.test("novel diagnosis: image-level AP of the pixel-averaged logit, and chance", () => {
  const d = handCase();
  // Mean logits: image 1 a 2/3, b 5/3, n 1 (a, n present); image 2 a 0, b 5, n 1.5 (b present).
  // a and b rank their one positive image first (AP 100); n ranks image 2 (absent) above image 1: AP 50.
  assertClose([d.imageMAP.base, d.imageMAP.novel, d.classes[0].imageAP], [100, 50, 50]);
  // Each class is in one image of two.
  assertClose([d.imageChance.base, d.imageChance.novel], [50, 50]);
});

Deno.test("novel diagnosis: a tie counts against the true class; bad shapes name the field", () => {
  const acc = novelDiagnosisAccumulator({
    classNames: ["a", "n"],
    novel: Uint8Array.from([0, 1]),
    ignoreIndex: 255,
  });
  acc.add(Float32Array.from([1, 1]), Int32Array.from([1]), 1, 1);
  const d = acc.summary();
  assertClose([d.novel.won, d.novel.meanRank, d.novel.meanMargin], [0, 2, 0]);
  assertEquals(d.winners, [{ name: "a", share: 100 }]);
  assertThrowsMessage(() => acc.add(new Float32Array(3), Int32Array.from([1]), 1, 1), "logits");
  assertThrowsMessage(() => acc.add(new Float32Array(4), Int32Array.from([1]), 1, 2), "labels");
  assertThrowsMessage(
    () => novelDiagnosisAccumulator({ classNames: ["a"], novel: Uint8Array.from([0, 1]), ignoreIndex: 255 }),
    "novel",
  );
});

const diagnosed = (run: string, novelWon: number, novelAP: number): Diagnosed => {
  const stats = (won: number) => ({ pixels: 10, won, classMeanWon: won, meanRank: 20, meanMargin: -4 });
  return {
    run,
    experiment: "larvseg-x",
    seed: 0,
    step: 600,
    classes: 59,
    novelMIoU: 0,
    diagnosis: {
      images: 200,
      base: stats(30),
      novel: stats(novelWon),
      imageMAP: { base: 45, novel: novelAP },
      imageChance: { base: 20, novel: 8 },
      classes: [],
      winners: [{ name: "background", share: 60 }],
    },
  };
};

Deno.test("novel diagnosis findings: recognised but not localised, or not recognised", () => {
  const recognised = findings([diagnosed("r/s0", 0, 22), diagnosed("r/s1", 0, 24)]).join("\n");
  assert(recognised.includes("win 0.00 ± 0.00 % of their pixels"), recognised);
  assert(recognised.includes("a random one would rank 30.0"), recognised);
  assert(recognised.includes("recognised per image, not localised per pixel"), recognised);
  assert(recognised.includes("background 60 %"), recognised);
  const chance = findings([diagnosed("r/s0", 0, 9), diagnosed("r/s1", 0, 8)]).join("\n");
  assert(
    chance.includes("does not rank images holding a novel class above the others beyond chance"),
    chance,
  );
  const table = runTable([diagnosed("r/s0", 0, 22)]);
  assert(table.includes("| 0.00 / 30.00 |") && table.includes("20.0 / 20.0 of 59"), table);
});

Deno.test("novel diagnosis refuses a model without novel classes, or not a semantic one", () => {
  assertEquals(
    diagnosisProblem({ model: { _tag: "Segmenter" }, eval: {} }),
    "its experiment names no novel classes (eval.novel)",
  );
  assertEquals(
    diagnosisProblem({ model: { _tag: "PanopticSegmenter" }, eval: { novel: ["x"] } }),
    "its model is PanopticSegmenter, not a semantic segmenter",
  );
  assertEquals(diagnosisProblem({ model: { _tag: "Segmenter" }, eval: { novel: ["x"] } }), undefined);
});

Deno.test("predictor logits: [K, h, w] at the input size, their argmax is the class map", async () => {
  const K = 5, S = 32;
  const model = m.segmenter({
    classes: K,
    backbone: m.vit({ dim: 16, depth: 1, heads: 2, patchSize: 8 }),
    headDim: 16,
  });
  const rng = random(3);
  // 32 × 40 is a multiple of the stride (8); 27 × 37 is padded and cropped back.
  for (const [h, w] of [[S, 40], [27, 37]] as const) {
    const image = Float32Array.from({ length: 3 * h * w }, () => rng.normal());
    const { logits, classes } = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      // No state: every session initializes the same parameters (by name and seed).
      const p = yield* makePredictor(model, new Map(), { mode: "whole", trainSize: [S, S] });
      return {
        logits: yield* p.logits(image, h, w),
        classes: (yield* p.predict(image, h, w, [h, w])).classes,
      };
    })));
    assertEquals(logits.length, K * h * w);
    assert(new Set(classes).size >= 2, "the class map is not constant (the check below means something)");
    let agree = 0;
    for (let p = 0; p < h * w; p++) {
      let best = 0;
      for (let c = 1; c < K; c++) if (logits[c * h * w + p] > logits[best * h * w + p]) best = c;
      if (best === classes[p]) agree++;
    }
    // The class map resizes the valid region in one composed resampling; the logits resize then crop: the
    // same interpolation up to float rounding, so only near-ties could differ.
    assert(agree >= 0.99 * h * w, `${h}×${w}: argmax agrees on ${agree} of ${h * w} pixels`);
  }
});
