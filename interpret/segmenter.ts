/**
 * The interpreter of the `Segmenter` kind, from spec to graphs: a training graph (forward, losses, backward, optimizer update
 * in one ONNX run) and an inference graph (per-pixel classes, K-class logits, multi-label scores,
 * selected classes). Both are traced at static shapes: batch size and input size are arguments.
 */
import { Graph, type Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { minimize, minimizeDataParallel, type OptimizerConfig } from "../ir/optim.ts";
import { attentivePairs, backboneStride, type Segmenter, usesImageLabels } from "../dsl/model.ts";
import type { Shapes } from "./shapes.ts";
import { segmenterForward, segmenterFromFeatures, type SegmenterOutput } from "../layers/segmenter.ts";
import { backbone, type Features } from "../layers/backbone.ts";
import {
  type BackboneMode,
  featureGraph as featureGraphOf,
  featureInputs,
  frozenState,
} from "./frozen_backbone.ts";
import { rankTargets } from "../layers/selection.ts";
import { MASKED_LOGIT } from "../layers/temperature.ts";
import {
  interpolateChannelsLast,
  regionInterpolationMatrix,
  resizeChannelsLast,
} from "../layers/upsample.ts";
import { asymmetricLoss, binaryCrossEntropy, softmaxCrossEntropy } from "../layers/losses.ts";
import { type Attentive, attentiveClassifier, imageLevelLoss } from "../layers/larvseg.ts";
import { graphStage, type Stage } from "../ir/plan.ts";
import { bankStages } from "../layers/larvseg_bank.ts";
import { type DataParallelOptions, dataParallelStages } from "./data_parallel.ts";

/** Names of the loss outputs of a training graph. */
export const LOSS = "loss",
  PIXEL_LOSS = "loss.pixel",
  MULTILABEL_LOSS = "loss.multiLabel",
  IMAGE_LEVEL_LOSS = "loss.imageLevel",
  ATTENTIVE_LOSS = "loss.attentive";

/** Every loss output a segmenter's training graph may have, in logging order. */
export const LOSS_NAMES = [LOSS, PIXEL_LOSS, MULTILABEL_LOSS, IMAGE_LEVEL_LOSS, ATTENTIVE_LOSS] as const;

/**
 * Inputs of a training graph with image-level labels: [b, K] multi-hot image-level labels, [b] 1 = the pixel
 * labels are valid, and (with a `partial` source) [b, K] 1 = the image's label for the class is known.
 */
export const IMAGE_LABELS = "imageLabels",
  PIXEL_LABELLED = "pixelLabelled",
  IMAGE_LABELS_KNOWN = "imageLabelsKnown";

/**
 * Which image-level inputs a training graph takes (`imageLabelInputs(model, data)` in dsl/experiment.ts):
 * `imageLabels` with `pixelLabelled`, and `known`. By default a graph takes image-level labels when
 * LarvSeg's losses read them, and no `known` mask.
 */
export interface ImageLabelInputs {
  readonly imageLabels: boolean;
  readonly known: boolean;
}

const defaultInputs = (spec: Segmenter): ImageLabelInputs => ({
  imageLabels: usesImageLabels(spec),
  known: false,
});

const trainGrid = (spec: Segmenter, [h, w]: readonly [number, number]) => {
  const s = backboneStride(spec.backbone);
  return [h / s, w / s] as const;
};

/** The separately trained multi-label model of the independent scheme, and its training crop. */
export interface Ranker {
  readonly model: Segmenter;
  readonly trainSize: readonly [number, number];
}

/** The frozen ranker's scores, traced under scope `ranker` (its variables: `ranker.<path>`). */
const rankerScores = (ranker: Ranker | undefined, images: Tensor): Tensor | undefined =>
  ranker &&
  images.graph.frozen(() =>
    images.graph.scope(
      "ranker",
      () =>
        o.stopGradient(
          segmenterForward(ranker.model, images, {
            mode: "eval",
            trainGrid: trainGrid(ranker.model, ranker.trainSize),
          })
            .scores!,
        ),
    )
  );

/**
 * The training graph's inputs: `images` (none when the backbone's outputs come from a cache), labels,
 * and the image-level labels `which` asks for.
 */
const inputs = (
  g: Graph,
  spec: Segmenter,
  shapes: Shapes,
  backbone: BackboneMode,
  which: ImageLabelInputs,
): { images?: Tensor; labels: Tensor; imageLabels?: Tensor; known?: Tensor } => {
  const images = backbone === "cached"
    ? undefined
    : o.input(g, "images", [shapes.batch, 3, shapes.height, shapes.width]);
  const labels = o.cast(o.input(g, "labels", [shapes.batch, shapes.height, shapes.width], "int32"), "int64");
  if (!which.imageLabels) return { images, labels };
  // Images with image-level labels only (pixelLabelled = 0) contribute no pixel term: their labels
  // are ignored here, whatever the loader put in them.
  const imageLabels = o.input(g, IMAGE_LABELS, [shapes.batch, spec.classes]);
  const pixelLabelled = o.reshape(o.input(g, PIXEL_LABELLED, [shapes.batch]), [shapes.batch, 1, 1]);
  const known = which.known ? o.input(g, IMAGE_LABELS_KNOWN, [shapes.batch, spec.classes]) : undefined;
  return {
    images,
    labels: o.where(o.greater(pixelLabelled, 0.5), labels, spec.ignoreIndex),
    imageLabels,
    ...(known ? { known } : {}),
  };
};

/**
 * The feature graph of a segmenter (`frozen_backbone.ts`): `images` → `features.0`, the backbone's
 * tokens [b, h·w, d] that the pixel-token projection reads, in evaluation mode.
 */
export const featureGraph = (spec: Segmenter, shapes: Shapes): Graph =>
  featureGraphOf(
    shapes,
    (images) => [backbone(images, spec.backbone, trainGrid(spec, shapes.trainSize), false).tokens],
  );

/** The backbone's tokens in a training graph: trained, frozen, or the cached graph's `features.0` input. */
const trainingFeatures = (
  g: Graph,
  spec: Segmenter,
  shapes: Shapes,
  images: Tensor | undefined,
  mode: BackboneMode,
): Features => {
  const grid = trainGrid(spec, shapes.trainSize);
  if (mode === "cached" || !images) {
    return { tokens: featureInputs(g, featureGraph(spec, shapes))[0], grid };
  }
  const train = mode === "trained";
  return g.scope("model", () => {
    const trace = () => backbone(images, spec.backbone, grid, train);
    return train ? trace() : g.frozen(trace);
  });
};

/**
 * The training graph: inputs `images` [b,3,H,W] (normalized), `labels` [b,H,W] int32, `lr`, `step`
 * (and `noise:*` for dropout; with LarvSeg's losses `imageLabels` [b,K] and `pixelLabelled` [b], both
 * float32 0/1); outputs `loss`, its terms, `gradNorm` and the `next:` state (optimizer moments). With
 * the attentive classifier it also reads the memory bank's class means and returns its new rows: it
 * runs between the bank's host stages (`trainingStages`).
 */
export const trainingGraph = (
  spec: Segmenter,
  shapes: Shapes,
  optimizer: OptimizerConfig,
  ranker?: Ranker,
  backbone: BackboneMode = "trained",
  which?: ImageLabelInputs,
): Graph => trainingParts(spec, shapes, optimizer, ranker, backbone, which).graph;

const trainingParts = (
  spec: Segmenter,
  shapes: Shapes,
  optimizer: OptimizerConfig,
  ranker: Ranker | undefined,
  backbone: BackboneMode,
  which?: ImageLabelInputs,
) => {
  const { graph, loss, bank } = lossGraph(spec, shapes, ranker, backbone, which);
  minimize(loss, optimizer);
  return { graph, bank };
};

/**
 * The training plan's stages: the training graph, and with LarvSeg's attentive classifier the memory
 * bank's `read` stage before it and `write` stage after it (host stages that keep the bank,
 * `model.attentive.bank*`, as state updated in place; layers/larvseg_bank.ts says why). With the
 * backbone's outputs `"cached"`, the frozen backbone's variables are held by a host stage first
 * (`frozen_backbone.ts`).
 */
export const trainingStages = (
  spec: Segmenter,
  shapes: Shapes,
  optimizer: OptimizerConfig,
  ranker?: Ranker,
  backbone: BackboneMode = "trained",
  which?: ImageLabelInputs,
): { graph: Graph; stages: Stage[] } => {
  const { graph, bank } = trainingParts(spec, shapes, optimizer, ranker, backbone, which);
  const train = graphStage(graph, { name: "train" });
  const stages = bank ? [bank.read, train, bank.write] : [train];
  return {
    graph,
    stages: backbone === "cached" ? [frozenState(featureGraph(spec, shapes)), ...stages] : stages,
  };
};

/**
 * The forward pass and losses of the training graph, without gradients or updates; `bank`: the memory
 * bank's host stages when the model has LarvSeg's attentive classifier.
 *
 * Image-level images (pixelLabelled = 0) reach the losses through `imageLabels` only: ξ's multi-label loss
 * (with `known`, their unknown classes left out) and LarvSeg's losses. LarvSeg's image-level loss is the
 * same for a `partial` image as for a `complete` one: it is a softmax over the vocabulary minus the image's
 * *other listed* classes, and leaving the unknown classes out too would leave the listed class alone in
 * its softmax (a loss of 0 for a single-label photo). So the unlisted classes of a partial image compete
 * with its class, as the official code treats its single-label ImageNet-21K photos.
 */
export const lossGraph = (
  spec: Segmenter,
  shapes: Shapes,
  ranker?: Ranker,
  backbone: BackboneMode = "trained",
  which: ImageLabelInputs = defaultInputs(spec),
  { dataParallel = false }: { readonly dataParallel?: boolean } = {},
): { graph: Graph; loss: Tensor; bank?: Attentive["stages"]; attentive?: Attentive } => {
  const g = new Graph("train", { dataParallel });
  const { images, labels, imageLabels, known } = inputs(g, spec, shapes, backbone, which);
  if (ranker && !images) {
    throw new Error("internal: the independent scheme's ranker needs images; a feature cache has none");
  }
  // The ranker is traced outside the model's scope: its variables are `ranker.<path>`.
  const scores = images && rankerScores(ranker, images);
  const features = trainingFeatures(g, spec, shapes, images, backbone);
  const out = g.scope(
    "model",
    () => segmenterFromFeatures(spec, features, { mode: "train", labels, rankerScores: scores }),
  );
  const terms: Tensor[] = [];
  // LarvSeg's losses read the logits over every class (validation requires select: all()) channel-last
  // at feature resolution, [b, n, K]; the bank is model state, traced under `model.attentive`.
  const larvSeg = usesImageLabels(spec) && imageLabels && out.logitsChannelsLast && (() => {
    const [b, h, w, k] = out.logitsChannelsLast!.shape;
    return { logits: o.reshape(out.logitsChannelsLast!, [b, h * w, k]), labels: imageLabels };
  })();
  const aux = spec.attentiveClassifier;
  const attentive = larvSeg && aux && out.larvSeg &&
    g.scope("model", () =>
      attentiveClassifier(aux, attentivePairs(spec, aux), {
        ...larvSeg,
        embeddings: out.larvSeg!.embeddings,
        cosine: out.larvSeg!.cosine,
      }));
  g.scope("loss", () => {
    const { pixel, multiLabel } = rankSegLosses(spec, out, labels, imageLabels, known);
    if (pixel) terms.push(o.mul(g.output(PIXEL_LOSS, pixel.loss), spec.pixelLossWeight));
    if (multiLabel && spec.multiLabelLoss) {
      terms.push(o.mul(g.output(MULTILABEL_LOSS, multiLabel), spec.multiLabelLoss.weight));
    }
    if (larvSeg && spec.imageLevelLoss) {
      const il = g.output(IMAGE_LEVEL_LOSS, imageLevelLoss(larvSeg.logits, larvSeg.labels));
      terms.push(o.mul(il, spec.imageLevelLoss.weight));
    }
    if (attentive && aux) terms.push(o.mul(g.output(ATTENTIVE_LOSS, attentive.loss), aux.weight));
  });
  const loss = g.output(LOSS, terms.reduce((a, b) => o.add(a, b)));
  return { graph: g, loss, ...(attentive ? { bank: attentive.stages, attentive } : {}) };
};

/**
 * One rank's stages of data-parallel training (interpret/data_parallel.ts): the training graph traced
 * for a rank and split into counts, gradients and update, with LarvSeg's bank stages around it (its
 * writes gathered from every rank, so that each rank keeps the one-process bank).
 */
export const dataParallelTrainingStages = (
  spec: Segmenter,
  shapes: Shapes,
  optimizer: OptimizerConfig,
  options: DataParallelOptions,
  ranker?: Ranker,
  which?: ImageLabelInputs,
): { graph: Graph; stages: Stage[] } => {
  const { graph, loss, attentive } = lossGraph(spec, shapes, ranker, "trained", which, {
    dataParallel: true,
  });
  const parts = minimizeDataParallel(loss, optimizer);
  const bank = attentive && bankStages(attentive.names, attentive.dims, options.collective);
  return dataParallelStages({
    graph,
    parts,
    losses: LOSS_NAMES.filter((n) => graph.outputs.has(n)),
    ...(bank ? { before: [bank.read], after: [bank.write] } : {}),
  }, options);
};

/**
 * The labels [b, H, W] at 1/r of their size: every r-th pixel from the top left (PyTorch's nearest resize
 * by an integer factor, which mmsegmentation's and LarvSeg's `resize(label, mode="nearest")` is).
 */
const lossLabels = (labels: Tensor, r: number): Tensor => {
  const [, height, width] = labels.shape;
  return r === 1 ? labels : o.slice(labels, [1, 2], [0, 0], [height, width], [r, r]);
};

/** The pixel and multi-label losses of a segmenter's forward output, with what the pixel loss saw. */
export interface RankSegLosses {
  /** The pixel cross-entropy (absent for multi-label-only models), its targets [b, H, W] (ranks under a
   * selection) and the logits it read: upsampled to the label size, channel-last [b, H, W, κ]. */
  readonly pixel?: { readonly loss: Tensor; readonly targets: Tensor; readonly logits: Tensor };
  /** ξ's multi-label loss, unweighted (absent without ξ or without a multi-label loss). */
  readonly multiLabel?: Tensor;
}

/**
 * The losses of RankSeg's segmenter on labels [b, H, W] (int64): the pixel cross-entropy over the
 * rank-ordered logits upsampled to the label size (mmseg; to 1/r of it with `pixelLossDownsample`),
 * targets remapped to ranks in the graph, and
 * the multi-label loss against the classes present (with `imageLabels` [b, K], their union; with `known`
 * [b, K], only the known entries summed). Both the upsampling and the softmax run channel-last, where ONNX
 * Runtime is fastest (layers/upsample.ts).
 */
export const rankSegLosses = (
  spec: Segmenter,
  out: SegmenterOutput,
  labels: Tensor,
  imageLabels?: Tensor,
  known?: Tensor,
): RankSegLosses => {
  const pixel = out.logitsChannelsLast && (() => {
    const at = lossLabels(labels, spec.pixelLossDownsample ?? 1);
    const [, height, width] = at.shape;
    const targets = out.selected ? rankTargets(at, out.selected.indices, spec.classes, spec.ignoreIndex) : at;
    const [, h, w] = out.logitsChannelsLast!.shape;
    const logits = h === height && w === width
      ? out.logitsChannelsLast! // the loss at feature resolution: nothing to resize
      : resizeChannelsLast(out.logitsChannelsLast!, height, width);
    // A selection of every class only reorders them: the labelled pixels are the labels' own, and a
    // data-parallel plan counts them without running the model (ir/count_normalized.ts).
    const everyClass = out.selected !== undefined && out.selected.indices.shape[1] >= spec.classes;
    const loss = softmaxCrossEntropy(logits, targets, {
      ignoreIndex: spec.ignoreIndex,
      axis: -1,
      reduction: spec.pixelLossReduction ?? "labelledPixels",
      ...(everyClass ? { countedLabels: at } : {}),
    });
    return { loss, targets, logits };
  })();
  const l = spec.xi ? spec.multiLabelLoss : null;
  // With image-level labels, ξ learns from them too (its loss needs no masks): the union of both.
  const target = l && (imageLabels ? o.maximum(out.present!, imageLabels) : out.present!);
  const multiLabel = l && target
    ? (l._tag === "Asymmetric"
      ? asymmetricLoss(out.scores!, target, l, known)
      : binaryCrossEntropy(out.scores!, target, known))
    : undefined;
  return { ...(pixel ? { pixel } : {}), ...(multiLabel ? { multiLabel } : {}) };
};

/** Names of the inference outputs. */
export const CLASSES = "classes",
  LOGITS = "logits",
  SCORES = "scores",
  SELECTED = "selected",
  FULL = "fullLogits";

export interface InferenceOptions {
  /** Use the ground-truth oracle at evaluation (needs the `labels` input). */
  readonly oracle?: boolean;
  readonly ranker?: Ranker;
  /**
   * The ranker-quality probe's α (a top-κ model; needs the `labels` input): classes are selected by ξ's
   * scores mixed with the ground truth (layers/selection.ts `probeScores`), and `scores` outputs the mix.
   */
  readonly groundTruthWeight?: number;
  /** The part of the (padded) input that holds the image, [h, w] from the top left (default: all). */
  readonly valid?: readonly [number, number];
  /** Size of the `classes` output: the valid region is resized to it (default: the valid size). */
  readonly output?: readonly [number, number];
  /** Also output `fullLogits` [b, K, H, W]: K-class logits at input resolution (sliding windows). */
  readonly fullLogits?: boolean;
}

/**
 * The inference graph: input `images` [b,3,H,W] (plus `labels` for the ground-truth oracle); outputs
 * `classes` [b,oh,ow] int64, `logits` [b,K,h,w] (selected classes scattered back, others −100),
 * `scores` [b,K] (sigmoid of ξ) and `selected` [b,κ] int64.
 *
 * The per-pixel class is the argmax of the upsampled κ rank logits mapped through `selected`: the same
 * as scattering to K classes (others −100) before upsampling, since a constant channel upsamples to
 * itself, but κ channels instead of K are interpolated. The upsampling, the crop to the valid region,
 * the resize to the output size and the argmax run channel-last, as one resampling per axis (the
 * matrices composed; layers/upsample.ts) and an argmax over the last axis.
 */
export const inferenceGraph = (spec: Segmenter, shapes: Shapes, options: InferenceOptions = {}): Graph => {
  const { oracle = false, ranker, groundTruthWeight } = options;
  const g = new Graph("inference");
  const images = o.input(g, "images", [shapes.batch, 3, shapes.height, shapes.width]);
  const needsLabels = oracle || groundTruthWeight !== undefined ||
    (spec.select._tag === "GroundTruth" && spec.select.eval);
  const labels = needsLabels
    ? o.cast(o.input(g, "labels", [shapes.batch, shapes.height, shapes.width], "int32"), "int64")
    : undefined;
  const select = oracle && spec.select._tag !== "GroundTruth"
    ? {
      _tag: "GroundTruth" as const,
      k: spec.select._tag === "TopK" ? spec.select.k : spec.classes,
      train: false,
      eval: true,
    }
    : spec.select;
  // The ranker is traced outside the model's scope: its variables are `ranker.<path>`.
  const scores = rankerScores(ranker, images);
  const out = g.scope("model", () =>
    segmenterForward({ ...spec, select }, images, {
      mode: "eval",
      trainGrid: trainGrid(spec, shapes.trainSize),
      labels,
      rankerScores: scores,
      groundTruthWeight,
    }));
  if (out.scores) g.output(SCORES, out.probeScores ?? o.sigmoid(out.scores));
  if (!out.logits) return g;
  const [b, k, h, w] = out.logits.shape;
  const indices = out.selected?.indices ??
    o.expand(o.constant(g, Array.from({ length: k }, (_, c) => c), [1, k], "int64"), [b, k]);
  g.output(SELECTED, indices);
  const scatter = (logits: Tensor) => {
    const [, , lh, lw] = logits.shape;
    return out.selected
      ? o.scatterElements(
        o.full(g, [b, spec.classes, lh, lw], MASKED_LOGIT),
        o.expand(o.reshape(indices, [b, k, 1, 1]), [b, k, lh, lw]),
        logits,
        1,
      )
      : logits;
  };
  g.output(LOGITS, scatter(out.logits));
  if (options.fullLogits) g.output(FULL, scatter(o.resize(out.logits, shapes.height, shapes.width)));
  const [vh, vw] = options.valid ?? [shapes.height, shapes.width];
  const [oh, ow] = options.output ?? [vh, vw];
  const region = interpolateChannelsLast(
    out.logitsChannelsLast!,
    { matrix: regionInterpolationMatrix(h, shapes.height, vh, oh), size: oh },
    { matrix: regionInterpolationMatrix(w, shapes.width, vw, ow), size: ow },
  ); // [b, oh, ow, κ]
  const rank = o.argMax(region, -1); // [b, oh, ow]
  g.output(CLASSES, o.reshape(o.gatherElements(indices, o.reshape(rank, [b, -1]), 1), [b, oh, ow]));
  return g;
};
