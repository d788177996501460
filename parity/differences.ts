/**
 * Where kappa deliberately differs from the official code (or from a paper whose code is not public),
 * and why. The parity table (RESULTS.md) prints this list under the checks; a difference that matters to
 * results and can be expressed as a spec option is one (and the checks use it).
 */
import type { MethodName } from "./compare.ts";

export interface Deviation {
  readonly method: MethodName | "ReMaX";
  readonly what: string;
  readonly official: string;
  readonly kappa: string;
  readonly why: string;
}

export const DEVIATIONS: readonly Deviation[] = [
  {
    method: "RankSeg",
    what: "pixel cross-entropy reduction",
    official:
      "mmseg's CrossEntropyLoss: the mean over all pixels, ignored ones (and, under top-κ, every pixel " +
      "whose class was not selected) adding 0 to the sum but counting in the denominator",
    kappa:
      'the mean over labelled pixels by default; `pixelLossReduction: "allPixels"` is the official form ' +
      "(the checks use it; with the default, their loss_seg came out 2.3× and 2.7× the official value)",
    why: "the official form scales each batch's pixel loss by its share of selected pixels, which couples " +
      "the loss to ξ's ranking; the default keeps the per-pixel loss the same whatever κ selects",
  },
  {
    method: "RankSeg",
    what: "rank-adaptive temperature (RA)",
    official: "LayerNorm over the κ rank-ordered logits with per-rank γ_r, β_r (`mask_norm`)",
    kappa:
      "`rankLayerNorm()` is that form (checked); `rankAdaptive()` (the default) is the paper's Eq. 3, one " +
      "learnable τ_r per rank, and `shared()` the baseline",
    why: "the paper and the code disagree; both are offered, the code's is the one checked",
  },
  {
    method: "RankSeg",
    what: "batch size of the Segmenter heads",
    official: "one image per forward: the class-feature gather (`view(-1)`) fails or mixes images for B > 1",
    kappa:
      "a batched gather (one index set per image); the checks run kappa at B = 2 against two official B = 1 " +
      "runs (outputs stacked, losses and parameter gradients averaged)",
    why: "DESIGN.md: do not copy the batch-1 bug",
  },
  {
    method: "RankSeg",
    what: "what ξ reads and what ψ classifies against, in the separate-head variants",
    official:
      "MaskTransformerRankSegDecoderHead's ξ reads the pooled backbone features and ψ the raw `cls_emb`; " +
      "its ξ has its own projection (`proj_dec` of RankSegEncoderHead, `input_proj` of RankSegDecoderHead)",
    kappa:
      "ξ reads the pixel tokens P (the one projection ψ reads too); the transformer ξ heads hand ψ their " +
      "normalized class features, the fused head's form (MaskTransformerRankSegHead, the main configs); the GAP " +
      "ξ hands ψ the raw embeddings. The ξ heads are checked on their own, and the GAP head whole with its " +
      "`proj_dec` set to the identity",
    why: "one pixel projection for both heads; the fused form is the published model",
  },
  {
    method: "RankSeg",
    what: "RankSegEncoderHead(orig=False) and ASPPRankSegHead (DeepLabV3 + RankSeg)",
    official: "a 1×1 depthwise-separable conv + ReLU projection; an ASPP decoder with BatchNorm",
    kappa:
      "not implemented (kappa's ξ projection is linear; its pixel decoders are ViT / ConvNet / MobileNetV2 " +
      "tokens with a linear or mask-transformer ψ)",
    why: "the Segmenter configs are the ones reproduced",
  },
  {
    method: "RankSeg",
    what: "Query2Label position code",
    official: "a float32 buffer (cumsum and powers in float32), converted when the module is float64",
    kappa: "computed in float64, cast to the graph's float32 (checked: 3e-7 relative)",
    why: "float rounding only",
  },
  {
    method: "kMaX-DeepLab",
    what: "the transformer-decoder layer around the k-means step",
    official:
      "BatchNorm (batch statistics) after every projection, a 256-wide bottleneck and a 2048-wide FFN " +
      "(hard-coded), deeplab2's attention (BatchNorm on the similarity logits, no 1/√d), GELU after the residuals, " +
      "a mask predictor per layer (depthwise 5×5 conv pixel head), three stages at strides 32 / 16 / 8, deep " +
      "supervision of every layer",
    kappa:
      "LayerNorm, widths from the spec (`queryDim`, `mlpRatio`), standard pre-norm attention, one shared " +
      "mask predictor, every layer at stride 4, no deep supervision. The k-means step itself (assignment = " +
      "argmax over the queries of the current mask logits, one-hot and detached; update = Σ_p A·V) is checked",
    why:
      "CPU scale (`layers/panoptic.ts`): BatchNorm needs batch statistics that a batch of 2–4 crops does not " +
      "give, and the hard-coded widths cost more than the whole CPU budget",
  },
  {
    method: "kMaX-DeepLab",
    what: "pixel-wise instance discrimination loss",
    official: "`loss_pixel_insdis` (weight 1.0), pixels sampled by Gumbel top-k",
    kappa: "not implemented",
    why: "DESIGN.md lists it as optional at CPU scale",
  },
  {
    method: "kMaX-DeepLab",
    what: "loss normalization",
    official: "each image's sum divided by its number of non-zero loss terms",
    kappa: "divided by the number of terms that take part (N queries; labelled pixels)",
    why: "equal unless a term is exactly 0 (the weights are clamped at 1e-5); checked equal",
  },
  {
    method: "kMaX-DeepLab",
    what: "more ground-truth masks than queries",
    official: "the unmatched masks' pixels count as void in the losses",
    kappa: "the smallest masks are dropped when targets are built, and the drop is counted in train.log",
    why: "static shapes ([b, M] targets, M ≤ N); identical whenever M ≤ N, the case checked",
  },
  {
    method: "kMaX-DeepLab",
    what: "panoptic merge ties",
    official: "class thresholds compared with > and queries ordered by an unstable argsort",
    kappa: "≥, and equal scores keep the lower query index",
    why: "only exact ties differ (checked maps are equal)",
  },
  {
    method: "ReMaX",
    what: "ReMask's gate (the official code is not public)",
    official: "the paper: m̃ = m + m ⊙ (σ(class logits)ᵀ · stopgrad(σ(semantic logits)))",
    kappa:
      "a probability gate: m̃ = m·(1 + Σ_k p_class[n, k]·p_semantic[k, p]) with the class softmax (void dropped) " +
      "and the per-pixel semantic softmax, so m̃ stays between m and 2m",
    why:
      "with sigmoids the gate is a sum of K terms, ≈ K/4 at initialization; on the coco133 grid the raw mask " +
      "logits shrank ~20× (std 0.13 against 2.4–3.7) and every sigmoid-form run scored PQ 0.00 " +
      "(`layers/remax.ts`)",
  },
  {
    method: "ReMaX",
    what: "ReClass's normalization (the official code is not public)",
    official: "the paper gives ỹ = η·w + (1 − η·w) ⊙ onehot(y) without the exact normalization of w",
    kappa: "w_{n,c} = Σ_p σ(m_{n,p})·[gt_p = c] / |gt = c|, η = 0.1, not renormalized, void 0 (a published " +
      "re-implementation's form)",
    why: "the only public form; stated in `layers/remax.ts`",
  },
  {
    method: "LarvSeg",
    what: "mixing pixel-labelled and image-level data",
    official: "one dataset per GPU, so gradients mix the two kinds 1:1 across GPUs",
    kappa: "both kinds in every batch of one process (`imageLevelData({ ratio: 0.5 })` by default; several " +
      "image-level sources side by side, each at its own ratio)",
    why: "the same mix on one machine; the ratios are spec fields",
  },
  {
    method: "LarvSeg",
    what: "when the attentive classifier reads and writes the bank",
    official:
      "per (image, label) in turn: score, then write that class's slot, so later pairs of a batch (and " +
      "of one image) see earlier writes; background classes use any other labelled class's bank, including " +
      "banks not yet written (random unit vectors at start)",
    kappa: "every pair of a batch is scored against the bank as it stood before the step, then the writes " +
      "follow in image order; a background class counts once its bank is full, and without one S_bg = 1 − S_fg",
    why: "one read and one write per step (host stages, O(touched rows)); DESIGN.md's form",
  },
  {
    method: "LarvSeg",
    what: "background without other labels, and resolution",
    official:
      "background suppression picks classes whose top-5 raw score exceeds 0.2 (and pass an MSE filter); " +
      "losses run on logits and attention bilinearly resized to half the label size",
    kappa:
      "1 − S_fg; the image-level and attentive losses at feature resolution; the pixel loss at the label " +
      "size, or at 1/r of it with `pixelLossDownsample: r` (2 is the official form)",
    why:
      "DESIGN.md's form of the method; feature resolution keeps the image-level losses cheap, and the pixel " +
      'loss\'s resolution decides how a step grows with K (BENCHMARKS.md, "LarvSeg memory bank")',
  },
];
