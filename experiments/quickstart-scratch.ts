/**
 * The quickstart's from-scratch variant (the quickstart until issue 12; `quickstart.ts` now starts from the
 * ImageNet MobileNetV2): a small RankSeg segmenter on CamVid at half resolution, sized to train in about
 * three minutes on two CPU cores. Joint scheme: ξ (a transformer block over pooled tokens and class
 * embeddings, asymmetric loss) ranks the classes of each image; ψ classifies pixels over the top-κ
 * classes with their linear classifier rows (RankSeg's selected-label classification on an FCN-style
 * head); rank-adaptive τ. Every CamVid validation frame holds all 11 classes, so κ = K: selection only
 * sorts here (coco133, with 6.5 of 133 classes per image, is where it can pay off; RESULTS.md shows
 * that at this scale only ground-truth label sets do, since ξ's ranking is still weak).
 *
 * Measured choices (one seed each, on this repository's 2-core machine): this convolutional backbone
 * (0.90 GFLOPs per 176×240 crop, whole model) reached 32.39 mIoU after 167 s of training; a ViT of a
 * little more compute (d = 80, depth 4, 2 heads, patch 8: 1.10 GFLOPs) with the same head reached 26.06
 * after the same 700 steps (138 s) and 25.88 after 850 steps (171 s, the same wall time). The linear ψ
 * trains ~25 % faster per step than the mask transformer and reached higher mIoU in the same time (in
 * RESULTS.md's reference rows, 3 seeds of 400 steps each: 26.93 vs 20.33); batch 4 for 700 steps beat
 * batch 8 for 350 (32.4 vs 29.8 mIoU, same wall time).
 */
import { experiment } from "../dsl/experiment.ts";
import * as m from "../dsl/model.ts";
import { adamWSpec, evalConfig, poly, trainConfig } from "../dsl/training.ts";
import { camvid } from "../dsl/datasets.ts";
import { testPipeline, trainPipeline } from "../dsl/dataset.ts";

export default experiment({
  name: "quickstart-camvid-scratch",
  model: m.segmenter({
    classes: 11,
    ignoreIndex: 11,
    backbone: m.convNet({ widths: [32, 64, 128], blocksPerStage: 2 }),
    xi: m.transformerEncoder({ pool: 8, heads: 2 }),
    psi: m.linearPsi(),
    select: m.topK(11),
    temperature: m.rankAdaptive(),
    multiLabelLoss: m.asymmetricLoss({ weight: 1 }),
  }),
  data: {
    dataset: camvid,
    train: trainPipeline({ scale: [240, 180], ratioRange: [0.75, 1.5], cropSize: [176, 240] }),
    test: testPipeline({ resize: [240, 180] }),
  },
  train: trainConfig({
    steps: 700,
    batchSize: 4,
    optimizer: adamWSpec({ lr: 1e-3, weightDecay: 0.01 }),
    schedule: poly({ warmupSteps: 20, minLr: 1e-6 }),
    logEvery: 20,
    evalEvery: 175,
    checkpointEvery: 175,
  }),
  eval: evalConfig({ examples: 4 }),
});
