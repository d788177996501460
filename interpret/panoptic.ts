/**
 * The interpreter of the `PanopticSegmenter` kind: one training plan of three stages and an inference
 * graph.
 *
 * Training plan: a cost graph (forward → Hungarian costs −dice × p(class), [b, N, M]) → the matching host
 * stage (`host/matching_stage.ts`: costs + mask counts → a 0/1 matching [b, N, M]) → the loss + update
 * graph (forward again, the losses of the matched pairs, backward, optimizer update).
 *
 * How the forward is shared between cost and loss: it is recomputed. The loss graph must differentiate
 * through the whole forward, so feeding it the cost graph's activations would still need every
 * activation of the network inside the loss graph (ONNX Runtime cannot backpropagate into a tensor that
 * came in as a feed); recomputing costs one forward pass more per step (the cost graph has no backward
 * and no update: about a third of a step) and keeps both graphs plain. The two forwards read the same
 * state (the update happens at the end of the loss graph), so the costs are those of the parameters the
 * loss sees; their only randomness (dropout) is absent here.
 *
 * Resolution: mask logits and all losses live on the stride-4 grid (as in kMaX); the full-resolution
 * targets fed to the plan are sampled at each 4×4 cell's centre pixel inside the graph.
 *
 * Inference graph: `classProbabilities` [b, N, K + 1] (softmax) and `maskProbabilities` [b, N, H, W]
 * (mask logits upsampled bilinearly, softmax over queries per pixel); mask-wise merging into a panoptic
 * map is a host step (`eval/panoptic_merge.ts`). ReMask and ReClass only change the training plan, so
 * the inference graph is the same with or without them.
 */
import type { PanopticSegmenter } from "../dsl/model.ts";
import { Graph, type Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { minimize, minimizeDataParallel, type OptimizerConfig } from "../ir/optim.ts";
import { type DataParallelOptions, dataParallelStages } from "./data_parallel.ts";
import { graphStage, type Stage } from "../ir/plan.ts";
import { matchingStage } from "../host/matching_stage.ts";
import { backboneMaps, panopticForward, panopticHead } from "../layers/panoptic.ts";
import {
  type BackboneMode,
  featureGraph as featureGraphOf,
  featureInputs,
  frozenState,
} from "./frozen_backbone.ts";
import {
  auxSemanticCrossEntropy,
  maskIdCrossEntropy,
  matchingCosts,
  matchingDiagnostics,
  pqStyleLoss,
  targetMasks,
} from "../layers/panoptic_losses.ts";
import { reClassTargets, reMask, reMaskGate } from "../layers/remax.ts";
import { presence } from "../layers/selection.ts";
import { binaryCrossEntropy } from "../layers/losses.ts";
import type { Shapes } from "./shapes.ts";

/** Feeds of the training plan (besides `lr`, `step`). */
export const IMAGES = "images",
  LABELS = "labels",
  MASK_IDS = "maskIds",
  MASK_CLASSES = "maskClasses",
  MASK_COUNTS = "maskCounts";
/** Values between the stages. */
export const COSTS = "costs", MATCHING = "matching", MATCHED_INDEX = "matchedIndex";
/** Loss outputs of the loss graph. */
export const LOSS = "loss",
  PQ_CLASS_LOSS = "loss.pqClass",
  PQ_DICE_LOSS = "loss.pqDice",
  MASK_ID_LOSS = "loss.maskId",
  SEMANTIC_LOSS = "loss.semantic",
  MULTILABEL_LOSS = "loss.multiLabel";
/** Inference outputs. */
export const CLASS_PROBABILITIES = "classProbabilities",
  MASK_PROBABILITIES = "maskProbabilities",
  CLASS_LOGITS = "classLogits",
  MASK_LOGITS = "maskLogits";

/** Ground-truth masks per image: as many as queries, so that every mask can be matched. */
export const maxMasks = (spec: PanopticSegmenter): number => spec.numMaskSlots;

/** [b, H, W] → [b, h·w]: each s×s cell's centre pixel (s = H / h), as nearest-neighbour downsampling. */
const sampleGrid = (x: Tensor, [h, w]: readonly [number, number]): Tensor => {
  const [b, height, width] = x.shape;
  const [sh, sw] = [height / h, width / w];
  const cells = o.reshape(x, [b, h, sh, w, sw]);
  const centres = o.slice(cells, [2, 4], [Math.floor(sh / 2), Math.floor(sw / 2)], [
    Math.floor(sh / 2) + 1,
    Math.floor(sw / 2) + 1,
  ]);
  return o.reshape(centres, [b, h * w]);
};

/**
 * The training forward shared (by recomputation) by the cost and the loss graph: inputs, the model
 * under scope `model`, targets on the stride-4 grid, and the mask logits matching and mask losses use
 * (ReMask's m̃ when on).
 */
const trainingForward = (g: Graph, spec: PanopticSegmenter, shapes: Shapes, backbone: BackboneMode) => {
  const { batch: b, height, width } = shapes;
  const m = maxMasks(spec);
  const images = backbone === "cached" ? undefined : o.input(g, IMAGES, [b, 3, height, width]);
  const labels = o.cast(o.input(g, LABELS, [b, height, width], "int32"), "int64");
  const maskIds = o.input(g, MASK_IDS, [b, height, width], "int64");
  const gtClasses = o.input(g, MASK_CLASSES, [b, m], "int64");
  const present = presence(labels, spec.classes, spec.ignoreIndex);
  // The backbone's maps: trained, frozen (no gradient, no update), or the cached graph's feature inputs.
  const maps = images === undefined
    ? featureInputs(g, featureGraph(spec, shapes))
    : g.scope("model", () =>
      backbone === "trained" ? backboneMaps(images, spec) : g.frozen(() => backboneMaps(images, spec)));
  const out = g.scope("model", () => panopticHead(spec, maps, { mode: "train", present }));
  const gridLabels = sampleGrid(labels, out.grid);
  const gtMasks = targetMasks(sampleGrid(maskIds, out.grid), m); // [b, M, P]
  const maskLogits = spec.remask
    ? reMask(out.maskLogits, out.classLogits, out.semanticLogits!)
    : out.maskLogits;
  return { out, maskLogits, gtMasks, gtClasses, gridLabels, present };
};

/**
 * The feature graph of a panoptic model (`frozen_backbone.ts`): `images` → `features.<i>`, the backbone
 * maps the pixel decoder reads (`backboneMaps`: stride 4 and coarser, NCHW).
 */
export const featureGraph = (spec: PanopticSegmenter, shapes: Shapes): Graph =>
  featureGraphOf(shapes, (images) => backboneMaps(images, spec));

/** The cost graph: the training forward → `costs` [b, N, M] (−dice × class probability). */
export const costGraph = (
  spec: PanopticSegmenter,
  shapes: Shapes,
  backbone: BackboneMode = "trained",
): Graph => {
  const g = new Graph("cost");
  const f = trainingForward(g, spec, shapes, backbone);
  g.scope(
    "matching",
    () => g.output(COSTS, matchingCosts(f.maskLogits, f.out.classLogits, f.gtMasks, f.gtClasses)),
  );
  return g;
};

/** The loss graph: the training forward and kMaX's losses of the matched pairs (input `matching`). */
export const lossGraph = (
  spec: PanopticSegmenter,
  shapes: Shapes,
  backbone: BackboneMode = "trained",
  { dataParallel = false }: { readonly dataParallel?: boolean } = {},
): { graph: Graph; loss: Tensor } => {
  const g = new Graph("train", { dataParallel });
  const f = trainingForward(g, spec, shapes, backbone);
  const matching = o.input(g, MATCHING, [shapes.batch, spec.numMaskSlots, maxMasks(spec)]);
  const terms: Tensor[] = [];
  g.scope("loss", () => {
    const classTargets = spec.reclass
      ? reClassTargets(f.out.maskLogits, f.gridLabels, matching, f.gtClasses, {
        classes: spec.classes,
        ignoreIndex: spec.ignoreIndex,
      })
      : undefined;
    const pq = pqStyleLoss({
      maskLogits: f.maskLogits,
      classLogits: f.out.classLogits,
      gtMasks: f.gtMasks,
      gtClasses: f.gtClasses,
      matching,
      classTargets,
    });
    g.output(PQ_CLASS_LOSS, pq.classTerm);
    g.output(PQ_DICE_LOSS, pq.diceTerm);
    terms.push(o.mul(o.add(pq.classTerm, pq.diceTerm), spec.pqStyleLossWeight));
    const maskId = g.output(MASK_ID_LOSS, maskIdCrossEntropy(f.maskLogits, f.gtMasks, matching));
    terms.push(o.mul(maskId, spec.maskIdCrossEntropyWeight));
    const semantic = g.output(
      SEMANTIC_LOSS,
      auxSemanticCrossEntropy(f.out.semanticLogits!, f.gridLabels, spec.ignoreIndex),
    );
    terms.push(o.mul(semantic, spec.auxSemanticWeight));
    const q = spec.queryClassification;
    if (q._tag === "RankSeg") {
      const ml = g.output(MULTILABEL_LOSS, binaryCrossEntropy(f.out.scores!, f.present));
      terms.push(o.mul(ml, q.weight));
    }
  });
  return { graph: g, loss: g.output(LOSS, terms.reduce((a, b) => o.add(a, b))) };
};

/** Prefix of the diagnostics graph's outputs (`diagnostics.matchedClassProb`, …). */
export const DIAGNOSTICS = "diagnostics.";

/**
 * The diagnostics graph: the training forward (no backward, no update) and `matchingDiagnostics` of the
 * matched pairs (input `matching`), each output named `diagnostics.<name>`. Run after the cost graph
 * and the matching stage, in place of the loss graph.
 */
export const diagnosticsGraph = (spec: PanopticSegmenter, shapes: Shapes): Graph => {
  const g = new Graph("diagnostics");
  const f = trainingForward(g, spec, shapes, "trained");
  const matching = o.input(g, MATCHING, [shapes.batch, spec.numMaskSlots, maxMasks(spec)]);
  g.scope("diagnostics", () => {
    const d = matchingDiagnostics({
      maskLogits: f.maskLogits,
      classLogits: f.out.classLogits,
      gtMasks: f.gtMasks,
      gtClasses: f.gtClasses,
      matching,
    });
    for (const [name, t] of Object.entries(d)) g.output(DIAGNOSTICS + name, t);
    if (spec.remask) {
      // How much ReMask relaxes the positives: its gate averaged over the ground-truth pixels of each
      // matched query (m̃ = m·(1 + gate) there).
      const own = o.matmul(matching, f.gtMasks); // [b, N, P]
      const gate = reMaskGate(f.out.classLogits, f.out.semanticLogits!);
      g.output(
        DIAGNOSTICS + "matchedReMaskGate",
        o.div(o.sum(o.mul(gate, own)), o.maximum(o.sum(own), 1)),
      );
    }
  });
  return g;
};

/** The loss graph with backward and optimizer update (inputs: the feeds, `matching`, `lr`, `step`). */
export const trainingGraph = (
  spec: PanopticSegmenter,
  shapes: Shapes,
  optimizer: OptimizerConfig,
  backbone: BackboneMode = "trained",
): Graph => {
  const { graph, loss } = lossGraph(spec, shapes, backbone);
  minimize(loss, optimizer);
  return graph;
};

/**
 * The training plan's stages: cost graph → Hungarian matching (host) → loss + update graph. `graph` is
 * the last one: it declares every parameter and optimizer moment the plan's state holds. With the
 * backbone's outputs `"cached"`, both graphs read them as inputs and the frozen backbone's variables are
 * held by a host stage first (`frozen_backbone.ts`).
 */
export const trainingStages = (
  spec: PanopticSegmenter,
  shapes: Shapes,
  optimizer: OptimizerConfig,
  backbone: BackboneMode = "trained",
): { graph: Graph; stages: Stage[] } => {
  const graph = trainingGraph(spec, shapes, optimizer, backbone);
  return {
    graph,
    stages: [
      ...(backbone === "cached" ? [frozenState(featureGraph(spec, shapes))] : []),
      graphStage(costGraph(spec, shapes, backbone), { name: "cost" }),
      matchingStage({
        name: "matching",
        costs: COSTS,
        counts: MASK_COUNTS,
        index: MATCHED_INDEX,
        matrix: MATCHING,
      }),
      graphStage(graph, { name: "train" }),
    ],
  };
};

/**
 * One rank's stages of data-parallel training (interpret/data_parallel.ts): cost graph → matching on the
 * rank's own images → gradients → all-reduce → update. kMaX's losses are normalized per image, then by
 * the batch mean: exact under gradient averaging, no count sites.
 */
export const dataParallelTrainingStages = (
  spec: PanopticSegmenter,
  shapes: Shapes,
  optimizer: OptimizerConfig,
  options: DataParallelOptions,
): { graph: Graph; stages: Stage[] } => {
  const { graph, loss } = lossGraph(spec, shapes, "trained", { dataParallel: true });
  const parts = minimizeDataParallel(loss, optimizer);
  return dataParallelStages({
    graph,
    parts,
    losses: [LOSS, PQ_CLASS_LOSS, PQ_DICE_LOSS, MASK_ID_LOSS, SEMANTIC_LOSS, MULTILABEL_LOSS].filter((n) =>
      graph.outputs.has(n)
    ),
    before: [
      graphStage(costGraph(spec, shapes), { name: "cost" }),
      matchingStage({
        name: "matching",
        costs: COSTS,
        counts: MASK_COUNTS,
        index: MATCHED_INDEX,
        matrix: MATCHING,
      }),
    ],
  }, options);
};

export interface PanopticInferenceOptions {
  /** The part of the (padded) input that holds the image, [h, w] from the top left (default: all). */
  readonly valid?: readonly [number, number];
  /** Size of the `maskLogits` output: the valid region resized to it (default: the valid size). */
  readonly output?: readonly [number, number];
}

/**
 * The inference graph: `images` [b, 3, H, W] → `classProbabilities` [b, N, K + 1] and
 * `maskProbabilities` [b, N, H, W] (softmax over queries), plus their logits for mask-wise merging on
 * the host: `classLogits` and `maskLogits` [b, N, oh, ow] (the valid region at the output size). It
 * reads only the spec's architecture fields: ReMask, ReClass and the loss weights leave it unchanged.
 */
export const inferenceGraph = (
  spec: PanopticSegmenter,
  shapes: Shapes,
  options: PanopticInferenceOptions = {},
): Graph => {
  const g = new Graph("inference");
  const { batch: b, height, width } = shapes;
  const images = o.input(g, IMAGES, [b, 3, height, width]);
  const out = g.scope("model", () => panopticForward(spec, images, { mode: "eval" }));
  const [h, w] = out.grid;
  const n = spec.numMaskSlots;
  g.output(CLASS_LOGITS, out.classLogits);
  g.output(CLASS_PROBABILITIES, o.softmax(out.classLogits, -1));
  const masks = o.resize(o.reshape(out.maskLogits, [b, n, h, w]), height, width);
  g.output(MASK_PROBABILITIES, o.softmax(masks, 1));
  const [vh, vw] = options.valid ?? [height, width];
  const [oh, ow] = options.output ?? [vh, vw];
  const region = vh === height && vw === width ? masks : o.slice(masks, [2, 3], [0, 0], [vh, vw]);
  g.output(MASK_LOGITS, oh === vh && ow === vw ? region : o.resize(region, oh, ow));
  return g;
};
