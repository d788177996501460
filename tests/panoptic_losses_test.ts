/**
 * The panoptic losses and ReMaX's relaxations on cases small enough to compute by hand; the numbers in
 * the expectations are written out from the formulas in the comments.
 */
import { Effect } from "effect";
import { assert, assertClose, assertEquals } from "./assert.ts";
import { runGraph } from "./graph_runner.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { grad } from "../ir/autodiff.ts";
import { checkCase } from "../runtime/gradcheck.ts";
import { value } from "../ir/value.ts";
import {
  auxSemanticCrossEntropy,
  classTargets,
  maskIdCrossEntropy,
  matchingCosts,
  matchingDiagnostics,
  pqStyleLoss,
  targetMasks,
} from "../layers/panoptic_losses.ts";
import { reClassTargets, reMask } from "../layers/remax.ts";

const { log } = Math;
const f32 = (shape: number[], ...xs: number[]) => value("float32", Float32Array.from(xs), shape);
const i64 = (shape: number[], ...xs: number[]) => value("int64", BigInt64Array.from(xs.map(BigInt)), shape);

// One image, N = 2 queries, M = 2 masks (the second is padding), P = 4 pixels, K = 2 classes + void.
// Mask logits all 0: every query has probability 1/2 on every pixel. Pixels 0, 1 are mask 0 (class 0);
// pixels 2, 3 are void. Class logits: query 0 [ln 2, 0, 0] → p = [1/2, 1/4, 1/4]; query 1 [0, 0, 0] → 1/3
// each. Query 0 is matched to mask 0, query 1 to nothing.
const [B, N, M, P, K] = [1, 2, 2, 4, 2];
const CASE = {
  maskLogits: f32([B, N, P], 0, 0, 0, 0, 0, 0, 0, 0),
  classLogits: f32([B, N, K + 1], log(2), 0, 0, 0, 0, 0),
  maskIds: i64([B, P], 0, 0, M, M),
  gtClasses: i64([B, M], 0, K),
  matching: f32([B, N, M], 1, 0, 0, 0),
};
// dice(q, mask 0) = |p ∩ g| / ((|p| + |g|) / 2 + 1e-5), p restricted to labelled pixels: 1 / 1.50001.
const DICE = 1 / 1.50001;
// Query 1's share of its mask on void: 1 / (2 + 1e-5).
const VOID_RATIO = 1 / 2.00001;

const caseGraph = () => {
  const g = new Graph("pq");
  const maskLogits = o.input(g, "maskLogits", [B, N, P]);
  const classLogits = o.input(g, "classLogits", [B, N, K + 1]);
  const gtMasks = targetMasks(o.input(g, "maskIds", [B, P], "int64"), M);
  const gtClasses = o.input(g, "gtClasses", [B, M], "int64");
  const matching = o.input(g, "matching", [B, N, M]);
  return { g, maskLogits, classLogits, gtMasks, gtClasses, matching };
};

Deno.test("matching costs: −dice × p(class), padding costs 0", async () => {
  const { g, maskLogits, classLogits, gtMasks, gtClasses } = caseGraph();
  g.output("gtMasks", gtMasks);
  g.output("costs", matchingCosts(maskLogits, classLogits, gtMasks, gtClasses));
  const out = await runGraph(g, CASE);
  assertEquals(out.gtMasks, [1, 1, 0, 0, 0, 0, 0, 0]);
  assertClose(out.costs, [-DICE / 2, 0, -DICE / 3, 0]);
});

Deno.test("PQ-style loss: class term weighted by dice / void share, dice term by class probability", async () => {
  const { g, ...x } = caseGraph();
  const { classTerm, diceTerm } = pqStyleLoss(x);
  g.output("classTerm", classTerm);
  g.output("diceTerm", diceTerm);
  g.output("targets", classTargets(x.matching, x.gtClasses, K));
  // ∂classTerm/∂class logits = (softmax − target) · weight / N; weights are constants.
  const [dClass] = grad(classTerm, [x.classLogits]);
  g.output("dClass", dClass);
  const out = await runGraph(g, CASE);
  assertEquals(out.targets, [1, 0, 0, 0, 0, 1]);
  // Query 0: CE −ln(1/2), weight 0.75·dice; query 1 (void target): CE −ln(1/3), weight 0.25·void share.
  const w0 = 0.75 * DICE, w1 = 0.25 * VOID_RATIO;
  assertClose(out.classTerm, (log(2) * w0 + log(3) * w1) / 2, { rtol: 1e-5 });
  // Smoothed dice of query 0 with mask 0: (2·1 + 1) / (1 + 2 + 1) = 3/4; weight p(class 0) = 1/2;
  // × 0.75 / N: 0.25 · 0.5 · 0.375 = 0.046875.
  assertClose(out.diceTerm, 0.046875, { rtol: 1e-5 });
  assertClose(out.dClass, [
    ...[(0.5 - 1) * w0 / 2, 0.25 * w0 / 2, 0.25 * w0 / 2],
    ...[w1 / 6, w1 / 6, (1 / 3 - 1) * w1 / 2],
  ], { rtol: 1e-4 });
});

Deno.test("PQ-style loss takes soft class targets (ReClass) in place of the hard ones", async () => {
  const { g, ...x } = caseGraph();
  const soft = o.input(g, "soft", [B, N, K + 1]);
  g.output("classTerm", pqStyleLoss({ ...x, classTargets: soft }).classTerm);
  const out = await runGraph(g, { ...CASE, soft: f32([B, N, K + 1], 1, 0.075, 0, 0, 0, 1) });
  const ce0 = log(2) + 0.075 * log(4); // −(1·ln 1/2 + 0.075·ln 1/4)
  assertClose(out.classTerm, (ce0 * 0.75 * DICE + log(3) * 0.25 * VOID_RATIO) / 2, { rtol: 1e-5 });
});

Deno.test("mask-ID cross-entropy: labelled pixels classify over queries, unmatched masks ignored", async () => {
  const { g, maskLogits, gtMasks, matching } = caseGraph();
  g.output("loss", maskIdCrossEntropy(maskLogits, gtMasks, matching));
  // Pixels 0, 1 → query 0 with p = 1/2: mean −ln(1/2); pixels 2, 3 are void.
  assertClose((await runGraph(g, CASE)).loss, log(2));
  // Query 0 prefers pixel 0 (logit ln 3 against 0: p = 3/4); pixel 1 stays 1/2. Mask 0 unmatched: 0.
  const out = await runGraph(g, { ...CASE, maskLogits: f32([B, N, P], log(3), 0, 0, 0, 0, 0, 0, 0) });
  assertClose(out.loss, (log(4 / 3) + log(2)) / 2, { rtol: 1e-5 });
  const none = await runGraph(g, { ...CASE, matching: f32([B, N, M], 0, 0, 0, 0) });
  assertClose(none.loss, 0);
});

Deno.test("auxiliary semantic cross-entropy: per-image mean over labelled pixels, then batch mean", async () => {
  const g = new Graph("semantic");
  const logits = o.input(g, "logits", [2, 2, 4]);
  const labels = o.input(g, "labels", [2, 4], "int64");
  g.output("loss", auxSemanticCrossEntropy(logits, labels));
  // Image 0 (classes × pixels): pixel 0 [ln 3, 0] label 0 → −ln 3/4; pixel 1 [0, 0] → ln 2; pixel 2
  // ignored; pixel 3 [0, ln 3] label 1 → −ln 3/4. Image 1: all logits 0, labels 0 → ln 2 each.
  const out = await runGraph(g, {
    logits: f32([2, 2, 4], log(3), 0, 5, 0, 0, 0, -5, log(3), 0, 0, 0, 0, 0, 0, 0, 0),
    labels: i64([2, 4], 0, 0, 255, 1, 0, 0, 0, 0),
  });
  assertClose(out.loss, ((2 * log(4 / 3) + log(2)) / 3 + log(2)) / 2, { rtol: 1e-5 });
});

Deno.test("ReMask: m + m ⊙ (p_classᵀ p_semantic) with softmax probabilities, no gradient into the semantic head", async () => {
  const g = new Graph("remask");
  const m = o.input(g, "m", [1, 1, 2]);
  const cls = o.input(g, "cls", [1, 1, 3]);
  const sem = o.input(g, "sem", [1, 2, 2]);
  const relaxed = reMask(m, cls, sem);
  g.output("relaxed", relaxed);
  const [dm, dcls, dsem] = grad(o.sum(relaxed), [m, cls, sem]);
  g.output("dm", dm);
  g.output("dcls", dcls);
  g.output("dsem", dsem);
  // Class softmax over K + 1 = [2, 1, 5] / 8, void dropped: p = [1/4, 1/8]. Semantic softmax over the
  // classes per pixel: pixel 0 [1/4, 3/4], pixel 1 [3/4, 1/4]. Gate: [1/16 + 3/32, 3/16 + 1/32] =
  // [5/32, 7/32]; m̃ = [1 + 5/32, −2 − 14/32].
  const out = await runGraph(g, {
    m: f32([1, 1, 2], 1, -2),
    cls: f32([1, 1, 3], log(2), 0, log(5)),
    sem: f32([1, 2, 2], 0, 0, log(3), -log(3)),
  });
  assertClose(out.relaxed, [1.15625, -2.4375]);
  assertClose(out.dm, [37 / 32, 39 / 32]);
  // ∂/∂p_k = Σ_p m_p p_semantic[k, p] = [−5/4, 1/4], void 0; through the softmax:
  // p_j (g_j − Σ_i p_i g_i) with Σ_i p_i g_i = −9/32.
  assertClose(out.dcls, [-31 / 128, 17 / 256, 45 / 256]);
  assertClose(out.dsem, [0, 0, 0, 0]);
});

Deno.test("ReMask: the gate stays in [0, 1] for a large vocabulary (m̃ ≤ 2m at initialization, K = 133)", async () => {
  // The reason for probabilities over sigmoids: zero logits give σ = 1/2 per class, and a sigmoid gate
  // would be 133/4 ≈ 33 here.
  const [n, k, p] = [2, 133, 3];
  const g = new Graph("remask-large");
  const relaxed = reMask(
    o.input(g, "m", [1, n, p]),
    o.input(g, "cls", [1, n, k + 1]),
    o.input(g, "sem", [1, k, p]),
  );
  g.output("relaxed", relaxed);
  const out = await runGraph(g, {
    m: f32([1, n, p], 1, -1, 2, 0.5, -3, 1),
    cls: f32([1, n, k + 1], ...new Array(n * (k + 1)).fill(0)),
    sem: f32([1, k, p], ...new Array(k * p).fill(0)),
  });
  // Class probability 1/134 each (void counted), semantic 1/133 each: gate = 133 · 1/134 · 1/133 = 1/134.
  const gate = 1 / 134;
  assertClose(out.relaxed, [1, -1, 2, 0.5, -3, 1].map((v) => v * (1 + gate)), { rtol: 1e-5 });
});

Deno.test("ReClass: soft targets from the overlap of the mask with each class region, η = 0.1", async () => {
  const g = new Graph("reclass");
  const m = o.input(g, "m", [1, 2, 4]);
  const labels = o.input(g, "labels", [1, 4], "int64");
  const matching = o.input(g, "matching", [1, 2, 2]);
  const gtClasses = o.input(g, "gtClasses", [1, 2], "int64");
  const targets = reClassTargets(m, labels, matching, gtClasses, { classes: 2 });
  g.output("targets", targets);
  // Query 0: σ(m) = [1/2, 1/2, 3/4, 1/4]; class 0 is pixels 0, 1 (area 2), class 1 pixel 2 (area 1),
  // pixel 3 unlabelled: w = [(1/2 + 1/2)/2, 3/4] = [1/2, 3/4]. Matched to class 0: ỹ = [1, 0.1·3/4, 0].
  // Query 1 unmatched: void.
  const out = await runGraph(g, {
    m: f32([1, 2, 4], 0, 0, log(3), -log(3), 1, 2, 3, 4),
    labels: i64([1, 4], 0, 0, 1, 255),
    matching: f32([1, 2, 2], 1, 0, 0, 0),
    gtClasses: i64([1, 2], 0, 2),
  });
  assertClose(out.targets, [1, 0.075, 0, 0, 0, 1]);
});

Deno.test("dice term and mask-ID cross-entropy: gradients w.r.t. mask logits match central differences", async () => {
  // The class-probability weight of the dice term depends on the class logits only, so with respect to
  // the mask logits both losses are exactly differentiable functions: finite differences must agree.
  const [b, n, m, p, k] = [2, 3, 2, 6, 3];
  const result = await Effect.runPromise(checkCase({
    name: "panoptic mask losses",
    ops: [],
    dtype: "float32",
    operands: [{ shape: [b, n, p] }, { shape: [b, p], gen: { indices: m + 1 } }],
    f: (maskLogits, maskIds) => {
      const g = maskLogits.graph;
      const gtMasks = targetMasks(maskIds, m);
      const classLogits = o.constant(g, Array.from({ length: b * n * (k + 1) }, (_, i) => Math.sin(i)), [
        b,
        n,
        k + 1,
      ]);
      const gtClasses = o.constant(g, [0, 2, 1, 1], [b, m], "int64");
      // Image 0: query 2 ↔ mask 0, query 0 ↔ mask 1; image 1: query 1 ↔ mask 0 only.
      const matching = o.constant(g, [0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0], [b, n, m]);
      const { diceTerm } = pqStyleLoss({ maskLogits, classLogits, gtMasks, gtClasses, matching });
      return o.add(diceTerm, maskIdCrossEntropy(maskLogits, gtMasks, matching));
    },
  }));
  assert(result.maxError > 0 && result.passed, `max error ${result.maxError} > ${result.tolerance}`);
});

Deno.test("matching diagnostics: the hand case's confidences, void probabilities and class weights", async () => {
  const { g, ...x } = caseGraph();
  for (const [name, t] of Object.entries(matchingDiagnostics(x))) g.output(name, t);
  const out = await runGraph(g, CASE);
  const one = (name: string) => (out[name] as number[])[0];
  // 1 of 2 queries matched; pixels 2, 3 of 4 unlabelled.
  assertClose([one("matchedShare"), one("voidPixelShare")], [0.5, 0.5]);
  // Query 0 (matched): p = [1/2, 1/4, 1/4]: p(class 0) = confidence = 1/2, void 1/4, dice as above.
  assertClose(
    [one("matchedClassProb"), one("matchedConfidence"), one("matchedVoidProb"), one("matchedDice")],
    [0.5, 0.5, 0.25, DICE],
    { rtol: 1e-5 },
  );
  assertClose(one("matchedClassWeight"), 0.75 * DICE, { rtol: 1e-5 });
  // Query 1 (unmatched): 1/3 each; half its mask on void.
  assertClose(
    [one("unmatchedVoidProb"), one("unmatchedConfidence"), one("unmatchedVoidRatio")],
    [1 / 3, 1 / 3, VOID_RATIO],
    { rtol: 1e-5 },
  );
  assertClose(one("unmatchedClassWeight"), 0.25 * VOID_RATIO, { rtol: 1e-5 });
  // Confidence ≥ 0.5: query 0 only.
  assertClose(one("confidentShare"), 0.5);
});
