/**
 * Segmenter specs: pure data describing a model, validated by Effect Schema, JSON round-trippable.
 *
 * Every node is a tagged struct built by a small constructor that fills in the paper's defaults, so a
 * spec written in TypeScript and its canonical JSON (`deno task spec`) describe exactly the same model.
 * Names follow the papers: ξ (`xi`, the multi-label head), ψ (`psi`, the pixel head), κ (`select.k`),
 * τ (`temperature`).
 */
import { Schema } from "effect";

const Positive = Schema.Int.check(Schema.isGreaterThan(0));
const NonNegative = Schema.Number.check(Schema.isGreaterThanOrEqualTo(0));
const Rate = Schema.Number.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThan(1));

// ---------------------------------------------------------------------------------------------------
// Backbones

/** Vision Transformer (no class token), learned position embeddings at the training crop's grid. */
export const ViT = Schema.TaggedStruct("ViT", {
  patchSize: Positive,
  dim: Positive,
  depth: Positive,
  heads: Positive,
  mlpRatio: Schema.Number.check(Schema.isGreaterThan(0)),
  dropout: Rate,
  epsilon: Schema.Number.check(Schema.isGreaterThan(0)),
});
export type ViT = typeof ViT.Type;

/**
 * A small convolutional backbone: per stage a stride-2 3×3 conv, then residual 3×3 convs, GELU after
 * each (optionally GroupNorm(1) before it); LayerNorm on the output tokens. Output stride 2^stages.
 */
export const ConvNet = Schema.TaggedStruct("ConvNet", {
  widths: Schema.Array(Positive),
  blocksPerStage: Positive,
  /** Normalize after every convolution over (C, H, W) per image (GroupNorm with one group). */
  groupNorm: Schema.Boolean,
});
export type ConvNet = typeof ConvNet.Type;

const Rgb = Schema.Tuple([Schema.Number, Schema.Number, Schema.Number]);

/** What a pretrained backbone's weights expect of the input: the pipeline's `mean` and `std` (RGB, 0..255). */
export const InputScaling = Schema.Struct({ mean: Rgb, std: Rgb });
export type InputScaling = typeof InputScaling.Type;

/** A MobileNetV2 feature map, by its nominal stride: c2 = 4, c3 = 8, c4 = 16, c5 = 32; `final` = 1280 channels. */
export const MobileNetV2Output = Schema.Literals(["c2", "c3", "c4", "c5", "final"]);
export type MobileNetV2Output = typeof MobileNetV2Output.Type;

/**
 * MobileNetV2 (torchvision's layout, so ImageNet weights load by name). `outputStride` 8 / 16 trade the
 * last stride-2 blocks for dilation (DeepLab); `outputs` lists the feature maps the model uses (a
 * segmenter reads the last one). Normalization is BatchNorm folded into the convolutions, i.e. a fixed
 * per-channel affine whose scale lives in the weights: at batch 4 batch statistics are noise, so
 * training-mode BatchNorm with running statistics is not offered. `pretrained` names a torchvision-layout
 * safetensors file (loaded by `weights/`), and `expects` the input scaling those weights were trained with.
 */
export const MobileNetV2 = Schema.TaggedStruct("MobileNetV2", {
  widthMultiplier: Schema.Number.check(Schema.isGreaterThan(0)),
  outputStride: Schema.Literals([8, 16, 32]),
  /** "same": TensorFlow SAME padding (the provided weights'); "symmetric": torchvision's. */
  padding: Schema.Literals(["same", "symmetric"]),
  normalization: Schema.Literal("frozenBatchNorm"),
  outputs: Schema.Array(MobileNetV2Output).check(Schema.isMinLength(1)),
  pretrained: Schema.NullOr(Schema.String),
  expects: Schema.NullOr(InputScaling),
});
export type MobileNetV2 = typeof MobileNetV2.Type;

export const Backbone = Schema.Union([ViT, ConvNet, MobileNetV2]);
export type Backbone = typeof Backbone.Type;

/**
 * A channel count rounded to the nearest multiple of `divisor` (at least `divisor`), never more than
 * 10 % below `v`: torchvision's `_make_divisible`, which fixes the widths its checkpoints have.
 */
export const makeDivisible = (v: number, divisor = 8): number => {
  const rounded = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  return rounded < 0.9 * v ? rounded + divisor : rounded;
};

const MOBILENET_V2_WIDTHS: Record<MobileNetV2Output, number> = {
  c2: 24,
  c3: 32,
  c4: 96,
  c5: 320,
  final: 1280,
};
const MOBILENET_V2_STRIDES: Record<MobileNetV2Output, number> = { c2: 4, c3: 8, c4: 16, c5: 32, final: 32 };

/** Channels of a MobileNetV2 feature map at a width multiplier (the final map never shrinks below 1280). */
export const mobileNetV2Channels = (b: MobileNetV2, output: MobileNetV2Output): number =>
  output === "final"
    ? makeDivisible(1280 * Math.max(1, b.widthMultiplier))
    : makeDivisible(MOBILENET_V2_WIDTHS[output] * b.widthMultiplier);

/** The output a model reads from a MobileNetV2: the last one listed. */
export const lastOutput = (b: MobileNetV2): MobileNetV2Output => b.outputs[b.outputs.length - 1];

/** The total downsampling factor of a backbone (of the features a model reads). */
export const backboneStride = (b: Backbone): number => {
  switch (b._tag) {
    case "ViT":
      return b.patchSize;
    case "ConvNet":
      return 2 ** b.widths.length;
    case "MobileNetV2":
      return Math.min(MOBILENET_V2_STRIDES[lastOutput(b)], b.outputStride);
  }
};

/** The strides of the feature maps a panoptic segmenter reads from its backbone (every stage / output). */
export const panopticStrides = (b: Backbone): number[] => {
  switch (b._tag) {
    case "ViT":
      return [b.patchSize];
    case "ConvNet":
      return b.widths.map((_, i) => 2 ** (i + 1));
    case "MobileNetV2":
      return b.outputs.map((o) => Math.min(MOBILENET_V2_STRIDES[o], b.outputStride));
  }
};

/** Output width of a backbone (of the features a model reads). */
export const backboneDim = (b: Backbone): number => {
  switch (b._tag) {
    case "ViT":
      return b.dim;
    case "ConvNet":
      return b.widths[b.widths.length - 1];
    case "MobileNetV2":
      return mobileNetV2Channels(b, lastOutput(b));
  }
};

// ---------------------------------------------------------------------------------------------------
// ξ: multi-label heads (K scores per image)

/** One pre-norm block over [pooled pixel tokens ; K class embeddings], LayerNorm, group-wise linear. */
export const TransformerEncoderXi = Schema.TaggedStruct("TransformerEncoder", {
  pool: Positive,
  heads: Positive,
  mlpRatio: Schema.Number.check(Schema.isGreaterThan(0)),
  dropout: Rate,
});

/** Query2Label: post-norm decoder layers, class embeddings as queries, cross-attention only. */
export const TransformerDecoderXi = Schema.TaggedStruct("TransformerDecoder", {
  layers: Positive,
  pool: Positive,
  heads: Positive,
  mlpRatio: Schema.Number.check(Schema.isGreaterThan(0)),
  dropout: Rate,
});

/**
 * Global average pool + linear. `hidden: true` puts a width-preserving linear layer + ReLU before the
 * classifier: the official GAP head (`RankSegGlobalPoolingHead`: pool, 1×1 conv + ReLU, 1×1 conv).
 * Absent means false, so specs written before the option keep their hash.
 */
export const GapLinearXi = Schema.TaggedStruct("GapLinear", { hidden: Schema.optionalKey(Schema.Boolean) });

export const MultiLabelHead = Schema.Union([TransformerEncoderXi, TransformerDecoderXi, GapLinearXi]);
export type MultiLabelHead = typeof MultiLabelHead.Type;

// ---------------------------------------------------------------------------------------------------
// ψ: pixel heads

/** Segmenter's mask transformer over [pixel tokens ; selected class embeddings], cosine logits. */
export const MaskTransformerPsi = Schema.TaggedStruct("MaskTransformer", {
  layers: Positive,
  heads: Positive,
  mlpRatio: Schema.Number.check(Schema.isGreaterThan(0)),
  dropout: Rate,
});

/** A per-pixel linear classifier (over the selected classes' weight columns). */
export const LinearPsi = Schema.TaggedStruct("Linear", {});

/**
 * LarvSeg's classifier: projected, L2-normalised pixel features p̂ = ℓ2(x·P_x) and class embeddings
 * ê = ℓ2(e·P_e); cosine s = p̂·ê; logits z = γ·(s − μ)/√(σ² + ε) + β with μ, σ² taken over the classes of
 * each pixel (the selected ones under top-κ) and learnable scalars γ (init 1), β (init 0). The z-score
 * with γ is its temperature: pair it with `temperature: noTemperature()`.
 */
export const LarvSegPsi = Schema.TaggedStruct("LarvSeg", {
  epsilon: Schema.Number.check(Schema.isGreaterThan(0)),
});

export const PixelHead = Schema.Union([MaskTransformerPsi, LinearPsi, LarvSegPsi]);
export type PixelHead = typeof PixelHead.Type;

// ---------------------------------------------------------------------------------------------------
// Label selection (κ) and temperature (τ)

/** Complete label: every class, in class order. */
export const All = Schema.TaggedStruct("All", {});
/**
 * The κ classes ξ ranks highest, sorted by score, one index set per image; same rule in training and eval
 * unless `train: false`, which trains ψ over every class (what LarvSeg's losses need) and selects the top
 * κ only at evaluation and inference (the RankSeg + LarvSeg combination).
 */
export const TopK = Schema.TaggedStruct("TopK", { k: Positive, train: Schema.optionalKey(Schema.Boolean) });
/**
 * Oracle: the classes present in the ground truth, in κ = `k` slots (unused slots are masked out).
 * `train: false` trains with top-κ of ξ and uses the ground truth at evaluation only.
 */
export const GroundTruth = Schema.TaggedStruct("GroundTruth", {
  k: Positive,
  train: Schema.Boolean,
  eval: Schema.Boolean,
});

export const Selection = Schema.Union([All, TopK, GroundTruth]);
export type Selection = typeof Selection.Type;

/** One learnable temperature τ = exp(θ) for every logit (the baseline). */
export const SharedTemperature = Schema.TaggedStruct("Shared", {
  init: Schema.Number.check(Schema.isGreaterThan(0)),
});
/** One learnable τ_r = exp(θ_r) per rank position (the paper's Eq. 3). */
export const RankAdaptiveTemperature = Schema.TaggedStruct("RankAdaptive", {
  init: Schema.Number.check(Schema.isGreaterThan(0)),
});
/** LayerNorm over the κ rank-ordered logits with per-rank γ_r, β_r (the official code's `mask_norm`). */
export const RankLayerNorm = Schema.TaggedStruct("RankLayerNorm", {});

/** No temperature: ψ's logits are used as they are (LarvSeg's classifier scales its own z-scores by γ). */
export const NoTemperature = Schema.TaggedStruct("None", {});

export const Temperature = Schema.Union([
  SharedTemperature,
  RankAdaptiveTemperature,
  RankLayerNorm,
  NoTemperature,
]);
export type Temperature = typeof Temperature.Type;

// ---------------------------------------------------------------------------------------------------
// Losses and schemes

/** Asymmetric loss (official defaults: γ₋ = 2, γ₊ = 0, clip 0.05, eps 1e-5, focusing weights differentiated). */
export const AsymmetricLoss = Schema.TaggedStruct("Asymmetric", {
  weight: NonNegative,
  gammaPos: NonNegative,
  gammaNeg: NonNegative,
  clip: Schema.Number.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThan(1)),
  eps: Schema.Number.check(Schema.isGreaterThan(0)),
  detachFocusing: Schema.Boolean,
});
export const BCELoss = Schema.TaggedStruct("BCE", { weight: NonNegative });
export const MultiLabelLoss = Schema.Union([AsymmetricLoss, BCELoss]);
export type MultiLabelLoss = typeof MultiLabelLoss.Type;

export const Joint = Schema.TaggedStruct("Joint", {});
/** The ranking comes from a separately trained multi-label model (a run folder), frozen. */
export const Independent = Schema.TaggedStruct("Independent", { ranker: Schema.String });
export const Scheme = Schema.Union([Joint, Independent]);
export type Scheme = typeof Scheme.Type;

// ---------------------------------------------------------------------------------------------------
// LarvSeg: image-level supervision (the losses of classes that have no masks)

/**
 * LarvSeg's image-level loss (λ_cls): for each image and each class l of its image-level labels, the
 * logits z averaged over all pixels of the image (at feature resolution), the image's *other* labelled
 * classes dropped from the vocabulary, cross-entropy against l; the mean over the (image, class) pairs
 * of the batch.
 */
export const ImageLevelLoss = Schema.TaggedStruct("ImageLevel", { weight: NonNegative });
export type ImageLevelLoss = typeof ImageLevelLoss.Type;

/**
 * LarvSeg's category-wise attentive classifier (λ_aux) and its memory bank [classes, M, K, d] of
 * detached pixel embeddings p̂, with a circular slot pointer and a fill counter per class.
 *
 * - `crossImage` (the paper's, M = 20, K = 20): each (image, class l) pair is scored against the bank as
 *   it stood before the step, then the image's K pixels of highest raw cosine s_l are written to slot
 *   ptr_l (the pointer advances once per pair, in batch order). A class contributes once its bank has
 *   been filled (M writes).
 * - `singleImage` (the released configs, M = 1, K = 1): the bank is written first, so a class is scored
 *   against this image's own top-K pixels (foreground and background alike); always ready.
 *
 * `labelsPerImage` is the static bound of a graph with static shapes: the attentive loss and the bank
 * see at most this many labels per image (the lowest class ids first); the image-level loss sees all.
 */
export const AttentiveClassifier = Schema.TaggedStruct("CategoryWiseAttentive", {
  weight: NonNegative,
  variant: Schema.Literals(["crossImage", "singleImage"]),
  /** M: bank slots per class. */
  slots: Positive,
  /** K: pixel features per slot (the top-K pixels of one image). */
  pixels: Positive,
  labelsPerImage: Positive,
});
export type AttentiveClassifier = typeof AttentiveClassifier.Type;

// ---------------------------------------------------------------------------------------------------
// The segmenter

export const Segmenter = Schema.TaggedStruct("Segmenter", {
  classes: Positive,
  /** Label value of ignored pixels (must lie outside 0..classes−1). */
  ignoreIndex: Schema.Int,
  backbone: Backbone,
  /** Width of the decoder tokens (Segmenter's d_model). */
  headDim: Positive,
  xi: Schema.NullOr(MultiLabelHead),
  psi: Schema.NullOr(PixelHead),
  select: Selection,
  temperature: Temperature,
  pixelLossWeight: NonNegative,
  /**
   * How the pixel cross-entropy is averaged: over the labelled pixels (absent, the default; PyTorch's
   * `ignore_index` mean) or over all pixels, ignored ones counting 0 (`"allPixels"`: mmsegmentation's
   * CrossEntropyLoss, which the official RankSeg code trains with; under top-κ every pixel whose class
   * was not selected is ignored too, so this scales each batch's pixel loss by its share of selected
   * pixels). Optional so that specs without it keep their hash.
   */
  pixelLossReduction: Schema.optionalKey(Schema.Literals(["labelledPixels", "allPixels"])),
  /**
   * The pixel loss at 1/r of the label size (absent: r = 1, the label size, as mmsegmentation): the logits
   * are resized bilinearly to (H/r, W/r) and the labels subsampled to every r-th pixel from the top left
   * (PyTorch's nearest resize at an integer factor). LarvSeg's official code trains at r = 2
   * (`downsample_rate`); r = the backbone stride computes it at feature resolution, with no resize. The
   * pixel loss's cost grows with (H/r)·(W/r)·κ: with K-class logits (`select: all()`) and a vocabulary of
   * 21,841 classes it is most of a training step at r = 1 (BENCHMARKS.md, "LarvSeg memory bank"). Optional
   * so that specs without it keep their hash.
   */
  pixelLossDownsample: Schema.optionalKey(Positive),
  multiLabelLoss: Schema.NullOr(MultiLabelLoss),
  scheme: Scheme,
  /** LarvSeg's image-level loss (absent: none; optional so that specs without it keep their hash). */
  imageLevelLoss: Schema.optionalKey(ImageLevelLoss),
  /** LarvSeg's category-wise attentive classifier (absent: none). */
  attentiveClassifier: Schema.optionalKey(AttentiveClassifier),
});
export type Segmenter = typeof Segmenter.Type;

/** Whether a segmenter's training graph takes image-level labels (LarvSeg's losses). */
export const usesImageLabels = (m: Segmenter): boolean =>
  m.imageLevelLoss !== undefined || m.attentiveClassifier !== undefined;

/**
 * Whether ξ's multi-label loss trains with this model (a joint ξ with a loss): then image-level sources
 * (`data.imageLevel`) can teach it, with no pixel term for their images.
 */
export const xiLearnsFromImageLabels = (m: Segmenter): boolean =>
  m.xi !== null && m.multiLabelLoss !== null && m.scheme._tag === "Joint";

/** The memory bank's shape [classes, M, K, d] (d: the head width). */
export const bankShape = (m: Segmenter, a: AttentiveClassifier): [number, number, number, number] => [
  m.classes,
  a.slots,
  a.pixels,
  m.headDim,
];

/** P: the (image, class) pairs per image the attentive classifier scores, min(labelsPerImage, classes). */
export const attentivePairs = (m: Segmenter, a: AttentiveClassifier): number =>
  Math.min(a.labelsPerImage, m.classes);

// ---------------------------------------------------------------------------------------------------
// Model kinds

/**
 * Every kind of model kappa builds, discriminated on `_tag`; an experiment's `model` is one of them.
 *
 * A kind is two registrations: its schema and cross-field rules here in dsl/ (`model_kinds.ts`), and its
 * record in `kinds/` (training stages, feeds, losses, evaluation, prediction, export), through which
 * train / eval / predict / export dispatch. The built-in kinds are registered by both modules.
 */
/**
 * A backbone with a classification head: global average pooling of the last feature map, then a linear
 * layer to `classes` logits (torchvision's classifier; its dropout is inactive at inference). Its use
 * here: checking imported ImageNet weights (`deno task classify`).
 */
export const Classifier = Schema.TaggedStruct("Classifier", {
  classes: Positive,
  backbone: Backbone,
});
export type Classifier = typeof Classifier.Type;

// ---------------------------------------------------------------------------------------------------
// The panoptic mask-transformer segmenter (kMaX-DeepLab; ReMaX's relaxed training; RankSeg queries)

/** Every query classifies over the K classes + void (kMaX). */
export const AllClasses = Schema.TaggedStruct("AllClasses", {});
/**
 * RankSeg on a mask transformer (the RankSeg paper's Mask2Former + RankSeg setting): a multi-label head
 * ranks the K classes of each image and every query classifies over the top-κ (`k`) classes + void;
 * the multi-label head trains with binary cross-entropy on the image's classes (`weight`).
 */
export const RankSegQueries = Schema.TaggedStruct("RankSeg", { k: Positive, weight: NonNegative });
export const QueryClassification = Schema.Union([AllClasses, RankSegQueries]);
export type QueryClassification = typeof QueryClassification.Type;

/**
 * Mask-wise merging's thresholds (DESIGN.md's defaults): mask probability > `maskThreshold`; a query is
 * kept at confidence ≥ `thingThreshold` / `stuffThreshold` when more than `overlapThreshold` of its mask
 * is still free and the free part has at least `minArea` pixels.
 */
export const MergeThresholds = Schema.Struct({
  maskThreshold: Schema.Number.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThan(1)),
  thingThreshold: Schema.Number.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(1)),
  stuffThreshold: Schema.Number.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(1)),
  overlapThreshold: Schema.Number.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(1)),
  minArea: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
});
export type MergeThresholds = typeof MergeThresholds.Type;

const Unit = Schema.Number.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(1));

/**
 * Class thresholds of mask-wise merging measured on the training split, for runs too short for the
 * class confidences to reach `merge`'s (kMaX's are for 150k steps). When set, every evaluation first
 * merges the training split's images (the test pipeline, whole images) under each pair of
 * `thingThresholds` × `stuffThresholds` and keeps the pair with the best PQ there (ties: the earlier
 * pair, thing-major); it then evaluates the requested split with that pair and `merge`'s other
 * thresholds, and records the pair and each candidate's training PQ. The test split never chooses.
 */
export const MergeCalibration = Schema.Struct({
  thingThresholds: Schema.NonEmptyArray(Unit),
  stuffThresholds: Schema.NonEmptyArray(Unit),
});
export type MergeCalibration = typeof MergeCalibration.Type;

/**
 * A panoptic mask transformer (kMaX-DeepLab's layout, field names after its config): a multi-scale
 * backbone → pixel decoder to stride 4 → `numMaskSlots` queries refined by `transformerDecoderLayers`
 * layers that cross-attend to the pixel features → per query class logits over K + 1 (void) and a mask
 * embedding; mask logits = mask embedding · pixel embeddings; an auxiliary semantic head (training only).
 *
 * `crossAttention`: "softmax" is the standard cross-attention; "kmeans" is kMaX's cluster-wise argmax
 * (each pixel is assigned to the query it matches best, one-hot over queries, and a query's update is
 * the sum of its pixels' values). `remask` / `reclass` switch on ReMaX's relaxations (training only:
 * the inference graph is the same either way).
 */
export const PanopticSegmenter = Schema.TaggedStruct("PanopticSegmenter", {
  /** K: thing and stuff classes (void, index K, is added by the class head). */
  classes: Positive,
  ignoreIndex: Schema.Int,
  backbone: Backbone,
  /** Width of the pixel decoder's feature maps (kMaX: 128 at stride 4). */
  pixelDecoderDim: Positive,
  /** N, the object queries (kMaX: num_mask_slots = 128 on COCO). */
  numMaskSlots: Positive,
  /** Transformer-decoder layers refining the queries (kMaX: 2 per stage × 3 stages). */
  transformerDecoderLayers: Positive,
  /** Query width (kMaX: 256). */
  queryDim: Positive,
  /** Heads of the queries' self-attention (kMaX: 8). */
  heads: Positive,
  /** FFN width / query width (kMaX: 2048 / 256 = 8). */
  mlpRatio: Schema.Number.check(Schema.isGreaterThan(0)),
  /** Width of mask embeddings and pixel embeddings (kMaX: 128). */
  maskEmbeddingDim: Positive,
  crossAttention: Schema.Literals(["softmax", "kmeans"]),
  /** kMaX's loss weights: PQ-style 3.0, mask-ID cross-entropy 0.3, auxiliary semantic 1.0. */
  pqStyleLossWeight: NonNegative,
  maskIdCrossEntropyWeight: NonNegative,
  auxSemanticWeight: NonNegative,
  remask: Schema.Boolean,
  reclass: Schema.Boolean,
  queryClassification: QueryClassification,
  /** Inference post-processing (a host step after the graph): how per-query masks merge into segments. */
  merge: MergeThresholds,
  /** Class thresholds chosen on the training split instead of `merge`'s (absent: `merge`'s, DESIGN.md's). */
  mergeCalibration: Schema.optionalKey(MergeCalibration),
});
export type PanopticSegmenter = typeof PanopticSegmenter.Type;

/** The built-in model kinds. `dsl/model_kinds.ts` registers their schemas; other kinds register their own. */
export const Model = Schema.Union([Segmenter, Classifier, PanopticSegmenter]);
export type Model = typeof Model.Type;
export type ModelKind = Model["_tag"];

/**
 * What every model kind's spec has, built-in or registered (`registerModelSchema`): the fields the
 * generic programs read — the tag the kind is found by, the class count and the backbone (whose stride
 * the crop sizes are checked against, and whose `pretrained` file initializes it).
 */
export interface ModelSpec {
  readonly _tag: string;
  readonly classes: number;
  readonly backbone: Backbone;
}

// ---------------------------------------------------------------------------------------------------
// Constructors with the papers' defaults

type Opt<T> = Partial<Omit<T, "_tag">>;

/** ViT backbone; presets below. Dropout 0 by default: masks are fed noise (see layers/dropout.ts). */
export const vit = (o: Opt<ViT> & Pick<ViT, "dim" | "depth" | "heads">): ViT => ({
  _tag: "ViT",
  patchSize: 16,
  mlpRatio: 4,
  dropout: 0,
  epsilon: 1e-6,
  ...o,
});
/** ViT-Tiny (d = 192, 3 heads, depth 12), as in Segmenter. */
export const vitTiny = (o: Opt<ViT> = {}): ViT => vit({ dim: 192, depth: 12, heads: 3, ...o });
/** ViT-Small (d = 384, 6 heads, depth 12). */
export const vitSmall = (o: Opt<ViT> = {}): ViT => vit({ dim: 384, depth: 12, heads: 6, ...o });
/** A CPU-sized ViT (d = 128, 2 heads, depth 4, patch 8) for experiments that train in minutes. */
export const vitMicro = (o: Opt<ViT> = {}): ViT => vit({ dim: 128, depth: 4, heads: 2, patchSize: 8, ...o });

/** The input scaling of the provided ImageNet MobileNetV2 weights: x / 127.5 − 1, i.e. inputs in [−1, 1]. */
export const MINUS_ONE_TO_ONE: InputScaling = { mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] };

/**
 * A MobileNetV2 backbone (width 1.0, output stride 8, SAME padding, the stride-32 map `c5`). With
 * `pretrained`, `expects` defaults to the provided weights' [−1, 1] input scaling.
 */
export const mobileNetV2 = (o: Opt<MobileNetV2> = {}): MobileNetV2 => ({
  _tag: "MobileNetV2",
  widthMultiplier: 1,
  outputStride: 8,
  padding: "same",
  normalization: "frozenBatchNorm",
  outputs: ["c5"],
  pretrained: null,
  ...o,
  expects: o.expects !== undefined ? o.expects : o.pretrained ? MINUS_ONE_TO_ONE : null,
});

export const convNet = (o: Opt<ConvNet> = {}): ConvNet => ({
  _tag: "ConvNet",
  widths: [32, 64, 128],
  blocksPerStage: 2,
  groupNorm: false,
  ...o,
});

export const transformerEncoder = (o: Opt<typeof TransformerEncoderXi.Type> = {}): MultiLabelHead => ({
  _tag: "TransformerEncoder",
  pool: 8,
  heads: 2,
  mlpRatio: 4,
  dropout: 0,
  ...o,
});
export const transformerDecoder = (o: Opt<typeof TransformerDecoderXi.Type> = {}): MultiLabelHead => ({
  _tag: "TransformerDecoder",
  layers: 2,
  pool: 8,
  heads: 2,
  mlpRatio: 4,
  dropout: 0,
  ...o,
});
export const gapLinear = (o: { readonly hidden?: boolean } = {}): MultiLabelHead =>
  o.hidden ? { _tag: "GapLinear", hidden: true } : { _tag: "GapLinear" };

export const maskTransformer = (o: Opt<typeof MaskTransformerPsi.Type> = {}): PixelHead => ({
  _tag: "MaskTransformer",
  layers: 2,
  heads: 2,
  mlpRatio: 4,
  dropout: 0,
  ...o,
});
export const linearPsi = (): PixelHead => ({ _tag: "Linear" });
/** LarvSeg's cosine classifier with the z-score over classes (ε = 1e-5, the official code's). */
export const larvSegClassifier = (epsilon = 1e-5): PixelHead => ({ _tag: "LarvSeg", epsilon });

export const all = (): Selection => ({ _tag: "All" });
export const topK = (k: number, o: { readonly train?: boolean } = {}): Selection =>
  o.train === false ? { _tag: "TopK", k, train: false } : { _tag: "TopK", k };
export const groundTruth = (
  { k, train = true, eval: atEval = true }: { k: number; train?: boolean; eval?: boolean },
): Selection => ({
  _tag: "GroundTruth",
  k,
  train,
  eval: atEval,
});

export const shared = (init = 0.1): Temperature => ({ _tag: "Shared", init });
export const rankAdaptive = (init = 0.1): Temperature => ({ _tag: "RankAdaptive", init });
export const rankLayerNorm = (): Temperature => ({ _tag: "RankLayerNorm" });
export const noTemperature = (): Temperature => ({ _tag: "None" });

export const asymmetricLoss = (o: Opt<typeof AsymmetricLoss.Type> = {}): MultiLabelLoss => ({
  _tag: "Asymmetric",
  weight: 10,
  gammaPos: 0,
  gammaNeg: 2,
  clip: 0.05,
  eps: 1e-5,
  detachFocusing: false,
  ...o,
});
export const bceLoss = (weight = 10): MultiLabelLoss => ({ _tag: "BCE", weight });

/** LarvSeg's image-level loss, λ_cls = 0.1 by default (the paper's). */
export const imageLevelLoss = (weight = 0.1): ImageLevelLoss => ({ _tag: "ImageLevel", weight });

/**
 * LarvSeg's category-wise attentive classifier, λ_aux = 0.1; the paper's cross-image bank (M = 20,
 * K = 20) by default, the released single-image variant (M = 1, K = 1) with `variant: "singleImage"`.
 */
export const attentiveClassifier = (
  o: Opt<AttentiveClassifier> = {},
): AttentiveClassifier => {
  const single = o.variant === "singleImage";
  return {
    _tag: "CategoryWiseAttentive",
    weight: 0.1,
    variant: "crossImage",
    slots: single ? 1 : 20,
    pixels: single ? 1 : 20,
    labelsPerImage: 16,
    ...o,
  };
};

export const joint = (): Scheme => ({ _tag: "Joint" });
export const independent = (ranker: string): Scheme => ({ _tag: "Independent", ranker });

/**
 * A segmenter; defaults give the RankSeg joint model (ξ transformer encoder + ASL, ψ mask transformer,
 * top-κ, rank-adaptive τ). Pass `xi: null` and `select: all()` for the complete-label baseline.
 */
export const segmenter = (o: Opt<Segmenter> & Pick<Segmenter, "classes" | "backbone">): Segmenter => {
  const xi = o.xi === undefined ? transformerEncoder() : o.xi;
  return {
    _tag: "Segmenter",
    ignoreIndex: 255,
    headDim: backboneDim(o.backbone),
    xi,
    psi: maskTransformer(),
    select: topK(Math.min(o.classes, 50)),
    temperature: rankAdaptive(),
    pixelLossWeight: 1,
    multiLabelLoss: xi ? asymmetricLoss() : null,
    scheme: joint(),
    ...o,
  };
};

/**
 * A LarvSeg segmenter: the LarvSeg classifier over every class (no ξ, `select: all()`, no temperature),
 * the image-level loss and the cross-image attentive classifier. Pass `attentiveClassifier:
 * attentiveClassifier({ variant: "singleImage" })` for the released variant, or `undefined` to drop it
 * (an `undefined` loss is left out of the spec, as if never given).
 */
export const larvSegmenter = (o: Opt<Segmenter> & Pick<Segmenter, "classes" | "backbone">): Segmenter => {
  const spec: Segmenter = segmenter({
    xi: null,
    psi: larvSegClassifier(),
    select: all(),
    temperature: noTemperature(),
    multiLabelLoss: null,
    imageLevelLoss: imageLevelLoss(),
    attentiveClassifier: attentiveClassifier(),
    ...o,
  });
  const { imageLevelLoss: cls, attentiveClassifier: aux, ...rest } = spec;
  return { ...rest, ...(cls ? { imageLevelLoss: cls } : {}), ...(aux ? { attentiveClassifier: aux } : {}) };
};

/** A classifier: backbone + global average pool + linear over `classes`. */
export const classifier = (o: Pick<Classifier, "classes" | "backbone">): Classifier => ({
  _tag: "Classifier",
  ...o,
});

export const allClasses = (): QueryClassification => ({ _tag: "AllClasses" });
/** RankSeg query classification over the top-`k` ranked classes (multi-label BCE weight 1 by default). */
export const rankSegQueries = (k: number, weight = 1): QueryClassification => ({
  _tag: "RankSeg",
  k,
  weight,
});

/**
 * A panoptic mask transformer with kMaX's loss weights and layout, its sizes scaled for 2 CPU cores
 * (kMaX on COCO: 128 queries, 6 decoder layers, width 256; here 32, 2, 64). kMaX's cluster-wise argmax
 * cross-attention by default; ReMask, ReClass and RankSeg off.
 */
export const panopticSegmenter = (
  o: Opt<PanopticSegmenter> & Pick<PanopticSegmenter, "classes" | "backbone">,
): PanopticSegmenter => ({
  _tag: "PanopticSegmenter",
  ignoreIndex: 255,
  pixelDecoderDim: 64,
  numMaskSlots: 32,
  transformerDecoderLayers: 2,
  queryDim: 64,
  heads: 2,
  mlpRatio: 4,
  maskEmbeddingDim: 64,
  crossAttention: "kmeans",
  pqStyleLossWeight: 3,
  maskIdCrossEntropyWeight: 0.3,
  auxSemanticWeight: 1,
  remask: false,
  reclass: false,
  queryClassification: allClasses(),
  merge: { maskThreshold: 0.4, thingThreshold: 0.7, stuffThreshold: 0.5, overlapThreshold: 0.8, minArea: 0 },
  ...o,
});
