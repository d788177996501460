/**
 * kMaX-DeepLab parity: kappa's panoptic pieces against the official PyTorch kMaX-DeepLab (bytedance,
 * run by reference.py in float32, which kMaX computes in): the k-means cross-attention's assignment and
 * update, the void prior of the class logits, Hungarian matching (costs and assignment), the losses
 * (PQ-style class and dice terms, mask-ID cross-entropy, auxiliary semantic cross-entropy) with their
 * gradients, and mask-wise panoptic merging.
 *
 * kappa's losses take the matching as an input: it comes from kappa's own cost graph and host-side
 * Hungarian stage (`host/matching_stage.ts`), as in training, so the loss rows also check that path.
 */
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { kmeansAssignment, withVoidPrior } from "../layers/panoptic.ts";
import {
  auxSemanticCrossEntropy,
  maskIdCrossEntropy,
  matchingCosts,
  pqStyleLoss,
} from "../layers/panoptic_losses.ts";
import { matchBatch } from "../host/matching_stage.ts";
import { mergePanoptic } from "../eval/panoptic_merge.ts";
import type { Reference } from "./reference_data.ts";
import { type Check, closeRow, exactRow, TOLERANCE } from "./compare.ts";
import { grad } from "../ir/autodiff.ts";
import { f32, GRAD, i64, runKappa } from "./kappa_run.ts";

const METHOD = "kMaX-DeepLab";
type Outputs = Map<string, Float64Array | BigInt64Array>;

const floats = (out: Outputs, name: string): Float64Array => {
  const v = out.get(name);
  if (!(v instanceof Float64Array)) throw new Error(`parity: kappa output "${name}" is missing or not float`);
  return v;
};
const ints = (out: Outputs, name: string): number[] => {
  const v = out.get(name);
  if (!(v instanceof BigInt64Array)) throw new Error(`parity: kappa output "${name}" is missing or not int`);
  return Array.from(v, Number);
};

interface MergeConfig {
  readonly classes: number;
  readonly things: readonly number[];
  readonly cases: readonly {
    readonly queries: number;
    readonly segments: readonly { id: number; isthing: boolean; category_id: number }[];
  }[];
}

/** A float32 feed of the reference tensor `name`. */
const feedF32 = (ref: Reference, name: string) => f32(ref.floats(name), ref.get(name).shape);
const feedI64 = (ref: Reference, name: string) => i64(ref.ints(name), ref.get(name).shape);

/** The k-means step: one-hot argmax over clusters of the mask logits, update = Σ_p A[n, p]·V[p]. */
const kmeansRows = async (ref: Reference): Promise<Check[]> => {
  const component = "k-means cross-attention (kMaXTransformerLayer)";
  const g = new Graph("kmeans");
  const maskLogits = o.input(g, "mask_logits", ref.get("kmeans.input.mask_logits").shape);
  const values = o.input(g, "values", ref.get("kmeans.input.values").shape);
  const assignment = kmeansAssignment(maskLogits); // [b, N, P]
  g.output("assignment", o.argMax(assignment, 1));
  g.output("update", o.matmul(assignment, values));
  const out = await runKappa(g, {
    mask_logits: feedF32(ref, "kmeans.input.mask_logits"),
    values: feedF32(ref, "kmeans.input.values"),
  });
  return [
    exactRow(
      METHOD,
      component,
      "assignment: cluster of each pixel (argmax over queries)",
      ints(out, "assignment"),
      ref.ints("kmeans.out.assignment"),
    ),
    closeRow(METHOD, component, "update Σ_p A·V (before its BatchNorm)", [{
      name: "update",
      kappa: floats(out, "update"),
      official: ref.floats("kmeans.out.update"),
    }], TOLERANCE.values),
  ];
};

const voidPriorRow = async (ref: Reference): Promise<Check> => {
  const g = new Graph("voidPrior");
  const logits = o.input(g, "logits", ref.get("void-prior.input.logits").shape);
  g.output("out", withVoidPrior(logits, (ref.cases["void-prior"] as { prior: number }).prior));
  const out = await runKappa(g, { logits: feedF32(ref, "void-prior.input.logits") });
  return closeRow(METHOD, "class head: void prior (add_bias_towards_void)", "class logits", [{
    name: "logits",
    kappa: floats(out, "out"),
    official: ref.floats("void-prior.out.logits"),
  }], TOLERANCE.values);
};

/** Costs [b, N, M] from kappa's cost graph, and kappa's host matching of them. */
const kappaMatching = async (ref: Reference, c: string) => {
  const g = new Graph(`${c}-costs`);
  const [maskLogits, classLogits, gtMasks, gtClasses] = [
    "mask_logits",
    "class_logits",
    "gt_masks",
    "gt_classes",
  ]
    .map((n) => o.input(g, n, ref.get(`${c}.input.${n}`).shape, n === "gt_classes" ? "int64" : "float32"));
  g.output("costs", matchingCosts(maskLogits, classLogits, gtMasks, gtClasses));
  const out = await runKappa(g, {
    mask_logits: feedF32(ref, `${c}.input.mask_logits`),
    class_logits: feedF32(ref, `${c}.input.class_logits`),
    gt_masks: feedF32(ref, `${c}.input.gt_masks`),
    gt_classes: feedI64(ref, `${c}.input.gt_classes`),
  });
  const costs = floats(out, "costs");
  const [b, n] = ref.get(`${c}.input.mask_logits`).shape;
  const m = ref.get(`${c}.input.gt_masks`).shape[1];
  const counts = (ref.cases[c] as { masks: number[] }).masks;
  const { index, matrix } = matchBatch(Float32Array.from(costs), counts, [b, n, m]);
  return { costs, index: Array.from(index, Number), matrix, dims: [b, n, m] as const };
};

const matcherRows = async (ref: Reference): Promise<Check[]> => {
  const component = "Hungarian matching (HungarianMatcher)";
  const { costs, index } = await kappaMatching(ref, "matcher");
  return [
    closeRow(METHOD, component, "costs −dice × p(class)", [{
      name: "costs",
      kappa: costs,
      official: ref.floats("matcher.out.costs"),
    }], TOLERANCE.values),
    exactRow(METHOD, component, "assignment (query → mask, scipy's)", index, ref.ints("matcher.out.index")),
  ];
};

/** The four kMaX losses and their gradients with respect to the three prediction inputs. */
const criterionRows = async (ref: Reference): Promise<Check[]> => {
  const c = "criterion";
  const { matrix, dims } = await kappaMatching(ref, c);
  const g = new Graph(c);
  const shape = (n: string) => ref.get(`${c}.input.${n}`).shape;
  const classLogits = o.input(g, "class_logits", shape("class_logits"));
  const maskLogits = o.input(g, "mask_logits", shape("mask_logits"));
  const semanticLogits = o.input(g, "semantic_logits", shape("semantic_logits"));
  const gtMasks = o.input(g, "gt_masks", shape("gt_masks"));
  const gtClasses = o.input(g, "gt_classes", shape("gt_classes"), "int64");
  const labels = o.input(g, "semantic_labels", shape("semantic_labels"), "int64");
  const matching = o.input(g, "matching", [...dims]);
  const { classTerm, diceTerm } = pqStyleLoss({ maskLogits, classLogits, gtMasks, gtClasses, matching });
  const losses = {
    loss_ce: classTerm,
    loss_dice: diceTerm,
    loss_mask: maskIdCrossEntropy(maskLogits, gtMasks, matching),
    loss_aux_semantic: auxSemanticCrossEntropy(semanticLogits, labels),
  };
  const inputs = ["class_logits", "mask_logits", "semantic_logits"];
  // One graph, four losses, each differentiated on its own: outputs `grad:<loss>.<input>`.
  for (const [name, loss] of Object.entries(losses)) {
    g.output(name, loss);
    grad(loss, inputs.map((n) => g.lookup(n)!)).forEach((t, i) => g.output(`${GRAD}${name}.${inputs[i]}`, t));
  }
  const out = await runKappa(g, {
    class_logits: feedF32(ref, `${c}.input.class_logits`),
    mask_logits: feedF32(ref, `${c}.input.mask_logits`),
    semantic_logits: feedF32(ref, `${c}.input.semantic_logits`),
    gt_masks: feedF32(ref, `${c}.input.gt_masks`),
    gt_classes: feedI64(ref, `${c}.input.gt_classes`),
    semantic_labels: feedI64(ref, `${c}.input.semantic_labels`),
    matching: f32(matrix, [...dims]),
  });
  const titles: Record<keyof typeof losses, string> = {
    loss_ce: "PQ-style loss, class term (loss_ce)",
    loss_dice: "PQ-style loss, dice term (loss_dice)",
    loss_mask: "mask-ID cross-entropy (loss_mask)",
    loss_aux_semantic: "auxiliary semantic cross-entropy (loss_aux_semantic)",
  };
  return (Object.keys(losses) as (keyof typeof losses)[]).flatMap((name) => [
    closeRow(METHOD, titles[name], "loss", [{
      name,
      kappa: floats(out, name),
      official: ref.floats(`${c}.out.${name}`),
    }], TOLERANCE.values),
    closeRow(
      METHOD,
      titles[name],
      "∂loss/∂(class, mask, semantic logits)",
      inputs.map((n) => ({
        name: n,
        kappa: floats(out, `${GRAD}${name}.${n}`),
        official: ref.floats(`${c}.grad.${name}.${n}`),
      })),
      TOLERANCE.gradients,
    ),
  ]);
};

/** Mask-wise merging: the panoptic map and the segments (id, class, thing or stuff) must be equal. */
const mergeRows = (ref: Reference): Check[] => {
  const cfg = ref.cases["merge"] as unknown as MergeConfig;
  const isThing = Array.from({ length: cfg.classes }, (_, c) => cfg.things.includes(c));
  return cfg.cases.flatMap((k, j) => {
    const pixels = ref.get(`merge.${j}.input.mask_logits`).shape[1];
    const map = mergePanoptic(
      ref.floats(`merge.${j}.input.class_logits`),
      ref.floats(`merge.${j}.input.mask_logits`),
      { queries: k.queries, classes: cfg.classes, pixels },
      isThing,
    );
    const component = `panoptic merge (panoptic_inference), case ${j + 1}`;
    const segments = (xs: readonly { id: number; category: number; isThing: boolean }[]) =>
      xs.flatMap((s) => [s.id, s.category, s.isThing ? 1 : 0]);
    return [
      exactRow(
        METHOD,
        component,
        "panoptic map (segment id per pixel)",
        Array.from(map.ids),
        ref.ints(`merge.${j}.out.ids`),
      ),
      exactRow(
        METHOD,
        component,
        `segments (id, class, thing): ${k.segments.length}`,
        segments(map.segments),
        segments(k.segments.map((s) => ({ id: s.id, category: s.category_id, isThing: s.isthing }))),
      ),
    ];
  });
};

/** Every kMaX check, in table order. */
export const kmaxChecks = async (ref: Reference): Promise<Check[]> => [
  ...await kmeansRows(ref),
  await voidPriorRow(ref),
  ...await matcherRows(ref),
  ...await criterionRows(ref),
  ...mergeRows(ref),
];
