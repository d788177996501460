/**
 * ξ alone on coco133, a ranker for `grid ranker-quality --ranker` beside ccp's `ccp-tags.ts`: the `pixel`
 * row's multi-label-only model and recipe (grid.ts) with coco133's 133 classes, the pipeline of the
 * pretrained RankSeg grid's coco133 rows (experiments/rankseg-pretrained/grid.ts), and recall@κ at their
 * κ = 25. coco133 has no image-level source, so its labels are the pixel-derived ones.
 */
import { pixelExperiment } from "./grid.ts";
import { coco133 } from "../../dsl/datasets.ts";
import { testPipeline, trainPipeline } from "../../dsl/dataset.ts";
import * as m from "../../dsl/model.ts";
import { KAPPA } from "../rankseg-pretrained/grid.ts";

const base = pixelExperiment("xi-coco133-pixel");

export default {
  ...base,
  model: { ...base.model, classes: 133 },
  data: {
    dataset: coco133,
    train: trainPipeline({
      scale: [320, 240],
      ratioRange: [0.75, 1.5],
      cropSize: [176, 240],
      ...m.MINUS_ONE_TO_ONE,
    }),
    test: testPipeline({ resize: [320, 240], ...m.MINUS_ONE_TO_ONE }),
  },
  eval: { ...base.eval, recallAt: KAPPA.coco133 },
};
