/**
 * LarvSeg parity by hand-computed cases. The official repository (HaojunYu1998/LarvSeg) has no licence,
 * so its code is neither copied nor run here; ../shared/reference/larvseg/README.md gives its maths with
 * the upstream file and line ranges, and each case below evaluates those equations directly in float64
 * (plain loops, nothing of kappa's) on small inputs, then runs kappa's layers on the same inputs.
 *
 *  1. The classifier (`_mask_norm`, `forward`): p̂ = ℓ2(x·P_x), ê = ℓ2(e·P_e), s = p̂·ê,
 *     z = γ·(s − μ)/√(σ² + 1e-5) + β over the classes of each pixel, scalar γ and β; under a softmax
 *     cross-entropy β's gradient is 0 and γ's is Σ_c (softmax(z)_c − y_c)·ẑ_c (ẑ the z-score), averaged.
 *  2. The image-level loss (`_cross_entropy_loss`): per (image, labelled class l), the logits averaged
 *     over all pixels, the image's other labels dropped, cross-entropy against l; mean over the pairs.
 *  3. The category-wise attentive classifier (`_coseg_score`, `_coseg_loss`, `_dequeue_and_enqueue`):
 *     S_fg = mean cosine to class l's bank entries, S_bg = the mean over the image's other labelled
 *     classes of theirs, A = σ(z-score over pixels of S_fg − S_bg), the image-level loss of
 *     mean_p(A_p·z_p); then class l's slot receives this image's top-Kp pixels by raw cosine s_l, best
 *     first. With tests/larvseg_layers_test.ts (a single image's image-level loss, the attentive loss
 *     with an unready bank, the write order across images and the wrap-around, the bank read).
 */
import { Effect } from "effect";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import * as m from "../dsl/model.ts";
import { larvSegClassifier } from "../layers/psi.ts";
import { softmaxCrossEntropy } from "../layers/losses.ts";
import { attentiveClassifier, imageLevelLoss } from "../layers/larvseg.ts";
import { graphStage, plan } from "../ir/plan.ts";
import { execute } from "../runtime/execute.ts";
import { type Check, closeRow, TOLERANCE } from "./compare.ts";
import { f32, GRAD, i64, outputGradients, runKappa } from "./kappa_run.ts";

// ---------------------------------------------------------------------------------------------------
// The equations, in float64 (rows of row-major matrices as plain arrays)

const dot = (a: readonly number[], b: readonly number[]) => a.reduce((s, x, i) => s + x * b[i], 0);
const l2 = (a: readonly number[]) => a.map((x) => x / Math.sqrt(dot(a, a)));
const times = (x: readonly number[], p: readonly number[][]) =>
  p[0].map((_, j) => dot(x, p.map((r) => r[j])));
const meanOf = (a: readonly number[]) => a.reduce((s, x) => s + x, 0) / a.length;
/** (a − μ)/√(σ² + 1e-5), biased variance (the official `normalize` / `_mask_norm`). */
const zScore = (a: readonly number[]) => {
  const mu = meanOf(a), v = meanOf(a.map((x) => (x - mu) ** 2));
  return a.map((x) => (x - mu) / Math.sqrt(v + 1e-5));
};
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
/** Cross-entropy of `logits` against class l, the classes in `dropped` removed from the vocabulary. */
const dropCE = (logits: readonly number[], l: number, dropped: readonly number[]) => {
  const kept = logits.map((z, c) => (c === l || !dropped.includes(c) ? z : -Infinity));
  const top = Math.max(...kept);
  return Math.log(kept.reduce((s, z) => s + Math.exp(z - top), 0)) + top - logits[l];
};

// ---------------------------------------------------------------------------------------------------
// 1. The classifier

const classifierRows = async (): Promise<Check[]> => {
  const component = "LarvSeg classifier (cosine, z-score over classes, scalar γ/β)";
  const x = [[3, 4], [1, -2], [0.5, 0.5]]; // 3 pixel tokens, d = 2
  const e = [[1, 0], [0, 1], [1, 1]]; // 3 classes
  const px = [[2, 0], [0.5, 1]], pe = [[1, -1], [0, 2]], gamma = 2, beta = 0.5;
  const targets = [0, 2, 1];
  // By the equations.
  const ph = x.map((r) => l2(times(r, px)));
  const eh = e.map((r) => l2(times(r, pe)));
  const s = ph.map((p) => eh.map((c) => dot(p, c)));
  const zhat = s.map(zScore);
  const z = zhat.map((r) => r.map((v) => gamma * v + beta));
  const softmax = (r: readonly number[]) => {
    const t = Math.max(...r), ex = r.map((v) => Math.exp(v - t)), sum = ex.reduce((a, b) => a + b, 0);
    return ex.map((v) => v / sum);
  };
  const ce = meanOf(z.map((r, n) => -Math.log(softmax(r)[targets[n]])));
  const dGamma = meanOf(
    z.map((r, n) => softmax(r).reduce((acc, p, c) => acc + (p - (c === targets[n] ? 1 : 0)) * zhat[n][c], 0)),
  );

  // kappa.
  const g = new Graph("larvsegClassifier");
  const pixels = o.input(g, "x", [1, 3, 2]);
  const classes = o.input(g, "e", [3, 2]);
  const out = larvSegClassifier(m.larvSegClassifier() as typeof m.LarvSegPsi.Type, pixels, classes);
  g.output("logits", out.logits);
  g.output("embeddings", out.embeddings);
  g.output("cosine", out.cosine);
  const loss = softmaxCrossEntropy(out.logits, o.input(g, "targets", [1, 3], "int64"), { axis: -1 });
  g.output("loss", loss);
  outputGradients(g, loss, ["psi.gamma", "psi.beta"]);
  const k = await runKappa(
    g,
    { x: f32(x.flat(), [1, 3, 2]), e: f32(e.flat(), [3, 2]), targets: i64(targets, [1, 3]) },
    new Map([
      ["psi.projPatch", Float64Array.from(px.flat())],
      ["psi.projClasses", Float64Array.from(pe.flat())],
      ["psi.gamma", Float64Array.of(gamma)],
      ["psi.beta", Float64Array.of(beta)],
    ]),
  );
  const get = (n: string) => k.get(n) as Float64Array;
  const row = (compared: string, pairs: Parameters<typeof closeRow>[3], tol: number = TOLERANCE.values) =>
    closeRow("LarvSeg", component, compared, pairs, tol);
  return [
    row("p̂ = ℓ2(x·P_x) and s = p̂·ê", [
      { name: "p̂", kappa: get("embeddings"), official: ph.flat() },
      { name: "s", kappa: get("cosine"), official: s.flat() },
    ]),
    row("z = γ·(s − μ)/√(σ² + 1e-5) + β", [{ name: "z", kappa: get("logits"), official: z.flat() }]),
    row("pixel cross-entropy on z", [{ name: "loss", kappa: get("loss"), official: [ce] }]),
    row("∂CE/∂γ (= mean Σ_c (p_c − y_c)·ẑ_c), ∂CE/∂β (= 0)", [
      { name: "γ", kappa: get(GRAD + "psi.gamma"), official: [dGamma] },
      {
        name: "β",
        kappa: get(GRAD + "psi.beta"),
        official: [0],
        zero: "softmax ignores a shift shared by every class",
      },
    ], TOLERANCE.gradients),
  ];
};

// ---------------------------------------------------------------------------------------------------
// 2. The image-level loss over a batch

const imageLevelRow = async (): Promise<Check> => {
  // 2 images × 4 pixels × 3 classes; image 0 labelled {0, 2}, image 1 labelled {1}.
  const z = [
    [[2, 0, 1], [0, 1, 3], [1, 0, 2], [1, 3, 2]],
    [[0.5, 2, -1], [1, 1, 1], [-2, 0, 4], [0, 3, 0]],
  ];
  const labels = [[1, 0, 1], [0, 1, 0]];
  const pairs: number[] = [];
  z.forEach((image, b) => {
    const avg = [0, 1, 2].map((c) => meanOf(image.map((p) => p[c])));
    const present = [0, 1, 2].filter((c) => labels[b][c] === 1);
    for (const l of present) pairs.push(dropCE(avg, l, present.filter((c) => c !== l)));
  });
  const g = new Graph("imageLevel");
  g.output("loss", imageLevelLoss(o.input(g, "z", [2, 4, 3]), o.input(g, "labels", [2, 3])));
  const k = await runKappa(g, { z: f32(z.flat(2), [2, 4, 3]), labels: f32(labels.flat(), [2, 3]) });
  return closeRow(
    "LarvSeg",
    "image-level loss (2 images, 3 (image, class) pairs)",
    "mean over pairs of CE(mean_p z, l), other labels dropped",
    [{ name: "loss", kappa: k.get("loss") as Float64Array, official: [meanOf(pairs)] }],
    TOLERANCE.values,
  );
};

// ---------------------------------------------------------------------------------------------------
// 3. The attentive classifier: two background classes, two entries per bank slot

const attentiveRows = async (): Promise<Check[]> => {
  const component = "category-wise attentive classifier (cross-image bank, M = 1, Kp = 2)";
  const unit = (deg: number) => [Math.cos((deg * Math.PI) / 180), Math.sin((deg * Math.PI) / 180)];
  const ph = [unit(10), unit(80), unit(200), unit(-60)]; // 4 pixels' p̂ (unit vectors), d = 2
  const bank = [[unit(0), unit(30)], [unit(90), unit(120)], [unit(180), unit(250)], [unit(300), unit(330)]];
  const z = [[2, 0.5, -1, 0.3], [0, 2, 1, -0.5], [-1, 0, 3, 0.2], [1, 1, 0, 2]]; // logits, K = 4
  const s = [[0.9, 0.1, -0.5, 0.2], [0.2, 0.8, 0.1, 0.3], [-0.3, 0.4, 0.95, 0.0], [0.5, -0.2, 0.3, 0.7]];
  const labels = [1, 1, 1, 0]; // classes 0, 1, 2 labelled; 3 not
  const present = [0, 1, 2];
  // By the equations: every labelled class's bank is full (ready).
  const scoreOf = (l: number) => ph.map((p) => meanOf(bank[l].map((entry) => dot(p, entry))));
  const losses = present.map((l) => {
    const fg = scoreOf(l);
    const others = present.filter((c) => c !== l).map(scoreOf);
    const bg = fg.map((_, p) => meanOf(others.map((o) => o[p])));
    const a = zScore(fg.map((f, p) => f - bg[p])).map(sigmoid);
    const pooled = [0, 1, 2, 3].map((c) => meanOf(z.map((row, p) => a[p] * row[c])));
    return dropCE(pooled, l, present.filter((c) => c !== l));
  });
  // The write: class l's slot 0 ← this image's 2 pixels of highest s_l, best first.
  const written = present.map((l) =>
    [0, 1, 2, 3].sort((p, q) => s[q][l] - s[p][l]).slice(0, 2).map((p) => ph[p])
  );
  const bankAfter = bank.map((slot, l) => (present.includes(l) ? written[l] : slot)).flat(2);

  // kappa: the attentive classifier between its bank's host stages.
  const g = new Graph("attentive");
  const spec = m.attentiveClassifier({ slots: 1, pixels: 2 });
  const a = attentiveClassifier(spec, 3, {
    logits: o.input(g, "z", [1, 4, 4]),
    embeddings: o.input(g, "embeddings", [1, 4, 2]),
    cosine: o.input(g, "cosine", [1, 4, 4]),
    labels: o.input(g, "labels", [1, 4]),
  });
  g.output("loss", a.loss);
  const state = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(plan("attentive", g, [a.stages.read, graphStage(g), a.stages.write]), {
      threads: 1,
    });
    ex.state.set(a.names.bank, f32(bank.flat(2), [4, 1, 2, 2]));
    ex.state.set(a.names.pointer, f32([0, 0, 0, 0], [4]));
    ex.state.set(a.names.fill, f32([1, 1, 1, 1], [4]));
    const out = yield* ex.run({
      z: f32(z.flat(), [1, 4, 4]),
      embeddings: f32(ph.flat(), [1, 4, 2]),
      cosine: f32(s.flat(), [1, 4, 4]),
      labels: f32(labels, [1, 4]),
    });
    return {
      loss: Float64Array.from(out.get("loss")!.data as Float32Array),
      bank: Float64Array.from(ex.state.get(a.names.bank)!.data as Float32Array),
    };
  })));
  return [
    closeRow("LarvSeg", component, "L_aux: mean over pairs of CE(mean_p A_p·z_p, l)", [{
      name: "loss",
      kappa: state.loss,
      official: [meanOf(losses)],
    }], TOLERANCE.values),
    closeRow("LarvSeg", component, "bank after the step (top-Kp p̂ by s_l, best first)", [{
      name: "bank",
      kappa: state.bank,
      official: bankAfter,
    }], TOLERANCE.values),
  ];
};

/** Every LarvSeg check, in table order. */
export const larvsegChecks = async (): Promise<Check[]> => [
  ...await classifierRows(),
  await imageLevelRow(),
  ...await attentiveRows(),
];
