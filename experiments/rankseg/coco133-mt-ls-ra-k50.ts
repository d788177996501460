/** RankSeg ablation, coco133: κ sweep, κ = 50 (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("coco133", "mt-ls-ra", 50);
