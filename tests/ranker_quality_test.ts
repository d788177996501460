/**
 * The ranker-quality sweep (grids/ranker_quality.ts): the probe's mixed ranking at its ends (α = 0 is ξ,
 * α = 1 the oracle's), the crossover finder and the findings on hand cases, and the runs it refuses.
 */
import { assert, assertClose, assertEquals } from "./assert.ts";
import { runGraph } from "./graph_runner.ts";
import * as m from "../dsl/model.ts";
import { inferenceGraph } from "../interpret/graphs.ts";
import { value } from "../ir/value.ts";
import { random } from "../core/random.ts";
import { rankerProbeProblem } from "../eval/evaluate.ts";
import {
  crossover,
  parseAlphas,
  rankerFindings,
  type Sweep,
  sweepCrossovers,
  sweepProblem,
} from "../grids/ranker_quality.ts";
import type { Experiment } from "../dsl/experiment.ts";

const K = 7, B = 4, S = 32;
const shapes = { batch: B, height: S, width: S, trainSize: [S, S] as const };
const model = (k: number, temperature: m.Temperature = m.shared(0.3)) =>
  m.segmenter({
    classes: K,
    backbone: m.vit({ dim: 16, depth: 1, heads: 2, patchSize: 8 }),
    headDim: 16,
    xi: m.transformerEncoder({ pool: 2 }),
    multiLabelLoss: m.asymmetricLoss(),
    select: m.topK(k),
    temperature,
  });

const rng = random(11);
const images = value(
  "float32",
  Float32Array.from({ length: B * 3 * S * S }, () => rng.normal()),
  [B, 3, S, S],
);
/** Image b holds classes {b, b+3} (mod K) and a column of ignored pixels. */
const labelData = new Int32Array(B * S * S).map((_, i) => {
  const [b, x] = [Math.floor(i / (S * S)), i % S];
  return x < 2 ? 255 : (b + (x < 16 ? 0 : 3)) % K;
});
const labels = value("int32", labelData, [B, S, S]);
const present = (b: number, c: number) => c === b % K || c === (b + 3) % K;

const infer = (spec: m.Segmenter, options: Parameters<typeof inferenceGraph>[2] = {}, withLabels = false) =>
  runGraph(inferenceGraph(spec, shapes, options), withLabels ? { images, labels } : { images }, { seed: 5 });

Deno.test("ranker probe: α = 0 is ξ's own ranking, bitwise", async () => {
  const spec = model(3);
  const plain = await infer(spec);
  const probed = await infer(spec, { groundTruthWeight: 0 }, true);
  for (const out of ["scores", "selected", "classes", "logits"]) assertEquals(probed[out], plain[out], out);
});

Deno.test("ranker probe: α = 1 selects exactly the oracle's classes in its order", async () => {
  // κ = 4 > the 2 classes present: the oracle masks its 2 absent slots, the probe keeps them.
  const spec = model(4);
  const oracle = await infer(spec, { oracle: true }, true);
  const probed = await infer(spec, { groundTruthWeight: 1 }, true);
  assertEquals(probed.selected, oracle.selected);
  for (let b = 0; b < B; b++) {
    const chosen = probed.selected.slice(b * 4, b * 4 + 4);
    assert(present(b, chosen[0]) && present(b, chosen[1]), `image ${b}: present classes first`);
    for (let c = 0; c < K; c++) {
      const at = (x: number[]) => x.slice((b * K + c) * 16, (b * K + c + 1) * 16);
      // The present classes' logits agree; the oracle's absent slots are masked, the probe's are not.
      if (present(b, c)) assertClose(at(probed.logits), at(oracle.logits), { atol: 1e-5 });
      else if (chosen.includes(c)) assert(at(oracle.logits).every((v) => v === -100), `class ${c} masked`);
    }
  }
  // κ = 2 = the classes present: nothing to mask, so the probe at α = 1 is the oracle mode, output for output.
  const tight = model(2);
  const oracle2 = await infer(tight, { oracle: true }, true);
  const probed2 = await infer(tight, { groundTruthWeight: 1 }, true);
  for (const out of ["selected", "classes"]) assertEquals(probed2[out], oracle2[out], out);
  assertClose(probed2.logits, oracle2.logits, { atol: 1e-5 });
});

Deno.test("ranker probe: the scores are (σ(ξ) + 2α·present) / (1 + 2α) and select their top κ", async () => {
  const spec = model(3);
  const plain = await infer(spec);
  for (const alpha of [0.05, 0.3]) {
    const probed = await infer(spec, { groundTruthWeight: alpha }, true);
    for (let b = 0; b < B; b++) {
      const want = Array.from(
        { length: K },
        (_, c) => (plain.scores[b * K + c] + 2 * alpha * Number(present(b, c))) / (1 + 2 * alpha),
      );
      assertClose(probed.scores.slice(b * K, (b + 1) * K), want, { atol: 1e-6 });
      const top = [...want.keys()].sort((x, y) => want[y] - want[x] || x - y).slice(0, 3);
      assertEquals(probed.selected.slice(b * 3, b * 3 + 3), top, `α ${alpha} image ${b}`);
    }
  }
});

Deno.test("ranker probe: refused for what it cannot probe, one line each", () => {
  assertEquals(rankerProbeProblem(model(3), 1.5), "α 1.5 is outside [0, 1]");
  assertEquals(
    rankerProbeProblem({ ...model(3), select: m.all() }, 0.5),
    "the model's selection is All, not top-κ",
  );
  assertEquals(
    rankerProbeProblem(model(3), 0.5, { oracle: true }),
    "the oracle selects the ground truth already",
  );
  assertEquals(rankerProbeProblem(model(3), 0.5), undefined);
  const e = (temperature: m.Temperature) => ({ model: model(3, temperature) }) as unknown as Experiment;
  assertEquals(sweepProblem(e(m.shared())), undefined);
  assertEquals(
    sweepProblem(e(m.rankAdaptive())),
    "its τ (RankAdaptive) has one parameter per rank, so its weights cannot evaluate at κ = K (sweep the " +
      "+MT+LS row, whose τ is shared)",
  );
  assertEquals(parseAlphas("0, 0.5,1"), [0, 0.5, 1]);
  assertEquals(parseAlphas("0,1.5"), '--alphas: "1.5" is not a number in [0, 1]');
  assertEquals(parseAlphas("0,x"), '--alphas: "x" is not a number in [0, 1]');
});

Deno.test("crossover: where a curve rises above a level for good", () => {
  const curve = [{ x: 20, y: 7 }, { x: 40, y: 8 }, { x: 60, y: 10 }, { x: 100, y: 12 }];
  // Below 9 at x = 40, above from x = 60: 40 + (9 − 8) · 20 / 2 = 50.
  assertEquals(crossover(curve, 9), { _tag: "At", x: 50 });
  assertEquals(crossover(curve, 6), { _tag: "Already", x: 20 });
  assertEquals(crossover(curve, 13), { _tag: "Never", gap: 1 });
  // A dip after a first crossing: the crossover is the last rise (unsorted input is sorted by x).
  assertEquals(crossover([{ x: 60, y: 8 }, { x: 20, y: 7 }, { x: 40, y: 10 }, { x: 80, y: 10 }], 9), {
    _tag: "At",
    x: 70,
  });
  assertEquals(crossover([], 1)._tag, "Never");
});

const point = (alpha: number, mAP: number, recall: number, mIoU: number, kappa = 12) => ({
  alpha,
  kappa,
  mIoU,
  mAP,
  recall,
  images: 200,
});
const sweep: Sweep = {
  run: "runs/x/ccp-mt-ls-s0",
  dataset: "ccp",
  classes: 59,
  kappa: 12,
  step: 500,
  points: [point(0, 24, 70, 7), point(0.1, 50, 85, 8), point(0.3, 80, 95, 10), point(1, 100, 100, 11)],
  control: [point(0, 100, 100, 9, 59), point(1, 100, 100, 9, 59)],
  oracle: point(1, 100, 100, 12),
};

Deno.test("ranker findings: the crossover on mAP, recall@κ and α, the ends and the controls", () => {
  const c = sweepCrossovers(sweep);
  assertEquals(c.level, 9);
  // 9 between 8 (mAP 50, recall 85, α 0.1) and 10 (mAP 80, recall 95, α 0.3): halfway.
  assertEquals(c.mAP, { _tag: "At", x: 65 });
  assertEquals(c.recall, { _tag: "At", x: 90 });
  assertClose([(c.alpha as { x: number }).x], [0.2], { atol: 1e-12 });
  assertEquals(rankerFindings([sweep]), [
    "### Findings (computed from the evaluations above)",
    "",
    "- `runs/x/ccp-mt-ls-s0` (step 500): At ξ's own ranking (α = 0: mAP 24.00, recall@12 70.00) +LS at κ = 12 " +
    "scores 7.00 mIoU against 9.00 at κ = K = 59 on the same weights: -2.00 (selection costs). Selection starts " +
    "to pay (and keeps paying for every better ranking swept) at mAP ≈ 65.0, recall@12 ≈ 90.0, α ≈ 0.200. At " +
    "the oracle's ranking (α = 1: mAP 100.00, recall@12 100.00) +LS scores 11.00 (+2.00 over κ = K); the " +
    "oracle mode, which also masks the absent classes left in the κ slots, scores 12.00 (+1.00 for the masking " +
    "alone). The κ = K control at α = 0 and 1: 9.00 and 9.00 (the same: with every class selected the ranking " +
    "changes nothing).",
  ]);
  // mAP complete at α = 0.3 while +LS still gains 1.00 by α = 1: the findings say mAP is the wrong axis.
  const saturated = {
    ...sweep,
    points: sweep.points.map((p) => (p.alpha === 0.3 ? { ...p, mAP: 99.5 } : p)),
  };
  assert(
    rankerFindings([saturated])[2].includes(
      "The mixed ranking's mAP is 99.50 already at α = 0.3, yet +LS gains 1.00 mIoU after it",
    ),
  );
  const never = { ...sweep, control: [point(0, 100, 100, 11.5, 59)] };
  assert(
    rankerFindings([never])[2].includes(
      "Selection never pays on this run: even at the best ranking swept it stays 0.50 mIoU below the κ = K control",
    ),
  );
  const two = rankerFindings([sweep, { ...sweep, run: "b", control: [point(0, 100, 100, 7.5, 59)] }]);
  // The second run crosses between mAP 24 (7) and 50 (8): 24 + 0.5 · 26 = 37, mean (65 + 37) / 2 = 51; on
  // recall between 70 and 85: 77.5, mean (90 + 77.5) / 2 = 83.75.
  assertEquals(
    two.at(-1),
    "- Over the 2 ccp runs: +LS − κ = K at ξ's own ranking -1.25 ± 1.06 mIoU; the crossover at mAP 51.0 ± " +
      "19.8, recall@κ 83.8 ± 8.8 (2 of 2 runs cross).",
  );
  // A run of another dataset is summarized apart (none here: one run only, so no spread line for it).
  const mixed = rankerFindings([sweep, { ...sweep, run: "b", control: [point(0, 100, 100, 7.5, 59)] }, {
    ...sweep,
    run: "c",
    dataset: "coco133",
  }]);
  assertEquals(mixed.filter((l) => l.startsWith("- Over the")).length, 1);
  // Ranked by a separately trained ξ: its own sentence per run, and its delta over the runs.
  const ranked = { ranker: "runs/xi", step: 2500, point: point(0, 32, 80, 9.5) };
  const withRanker = rankerFindings([{ ...sweep, ranked }, { ...sweep, run: "b", ranked }]);
  assert(
    withRanker[2].includes(
      "Ranked by the separately trained ξ (mAP 32.00, recall@12 80.00) +LS scores 9.50: +0.50 against κ = K " +
        "(selection pays).",
    ),
    withRanker[2],
  );
  assert(
    withRanker.at(-1)!.endsWith(
      "; ranked by the separately trained ξ (mAP 32.00 ± 0.00), +LS − κ = K 0.50 ± 0.00 mIoU (2 runs).",
    ),
    withRanker.at(-1),
  );
});

Deno.test("a separately trained ranker's scores rank in place of the model's own ξ", async () => {
  const spec = model(3);
  const ranker = {
    model: m.segmenter({
      classes: K,
      backbone: m.vit({ dim: 16, depth: 1, heads: 2, patchSize: 8 }),
      headDim: 16,
      xi: m.gapLinear(),
      psi: null,
      select: m.all(),
      multiLabelLoss: m.asymmetricLoss(),
    }),
    trainSize: [S, S] as const,
  };
  const own = await infer(spec);
  const swapped = await infer(spec, { ranker });
  const independent = await infer({ ...spec, xi: null, scheme: m.independent("runs/xi") }, { ranker });
  // The scores (and so the selection) are the ranker's, as in the independent scheme; not the model's ξ.
  assertEquals(swapped.scores, independent.scores);
  assertEquals(swapped.selected, independent.selected);
  assert(
    JSON.stringify(swapped.scores) !== JSON.stringify(own.scores),
    "the ranker's scores differ from ξ's",
  );
});
