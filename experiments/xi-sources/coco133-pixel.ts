/**
 * ξ alone on coco133, a ranker for `grid ranker-quality --ranker` beside ccp's `ccp-tags.ts`: the `pixel`
 * row's multi-label-only model and recipe (grid.ts) with coco133's 133 classes, the pipeline of the
 * pretrained RankSeg grid's coco133 rows (experiments/rankseg-pretrained/grid.ts), and recall@κ at their
 * κ = 25. coco133 has no image-level source, so its labels are the pixel-derived ones.
 */
import { pixelExperiment } from "./grid.ts";
import { data, KAPPA } from "../rankseg-pretrained/grid.ts";

const base = pixelExperiment("xi-coco133-pixel");

export default {
  ...base,
  model: { ...base.model, classes: 133 },
  data: data("coco133"),
  eval: { ...base.eval, recallAt: KAPPA.coco133 },
};
