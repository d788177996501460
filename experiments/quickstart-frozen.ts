/**
 * The quickstart on a frozen backbone (`train.frozenBackbone`, the linear-probe / frozen-feature
 * protocol): the same RankSeg head on the same ImageNet MobileNetV2, data and schedule, but the backbone
 * gets no gradient and no update, and each step reads its outputs for 8 seeded augmentation draws of every
 * training frame from a float16 feature cache (`runs/.feature-cache/<key>/`, built by the first run that
 * needs it and reused by every run and seed with the same backbone, weights, pipeline and data).
 * Evaluation runs the whole model on the validation frames, as the quickstart's does.
 *
 * BENCHMARKS.md's "Frozen backbone (feature cache)" has the step time against the quickstart's
 * fine-tuning step, the cache's build time and size (`npx --yes deno@2.9.6 task bench frozen`).
 */
import { experiment } from "../dsl/experiment.ts";
import { frozenBackbone } from "../dsl/training.ts";
import quickstart from "./quickstart.ts";

export default experiment({
  ...quickstart,
  name: "quickstart-frozen-camvid",
  train: {
    ...quickstart.train,
    // No backbone parameter trains, so the quickstart's backbone learning-rate group has nothing to scale.
    paramGroups: [],
    frozenBackbone: frozenBackbone({ draws: 8 }),
  },
});
