/** RankSeg ablation, coco133: reference row "baseline" with the linear ψ (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("coco133", "baseline-linear");
