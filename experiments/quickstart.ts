/**
 * The quickstart: a small RankSeg segmenter (joint scheme: ξ transformer encoder + asymmetric loss,
 * ψ mask transformer over the top-κ classes, rank-adaptive τ) on CamVid at half resolution, sized to
 * train in about five minutes on two CPU cores.
 */
import { experiment } from "../dsl/experiment.ts";
import * as m from "../dsl/model.ts";
import { adamWSpec, evalConfig, poly, trainConfig } from "../dsl/training.ts";
import { camvid, testPipeline, trainPipeline } from "../data/mod.ts";

export default experiment({
  name: "quickstart-camvid",
  model: m.segmenter({
    classes: 11,
    ignoreIndex: 11,
    backbone: m.convNet({ widths: [32, 64, 128], blocksPerStage: 2 }),
    xi: m.transformerEncoder({ pool: 8, heads: 2 }),
    psi: m.maskTransformer({ layers: 2, heads: 2 }),
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
    steps: 300,
    batchSize: 8,
    optimizer: adamWSpec({ lr: 1e-3, weightDecay: 0.01 }),
    schedule: poly({ warmupSteps: 20, minLr: 1e-6 }),
    logEvery: 10,
    checkpointEvery: 100,
  }),
  eval: evalConfig({ examples: 4 }),
});
