/** RankSeg ablation, coco133: reference row "mt-ls-ra" with the linear ψ (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("coco133", "mt-ls-ra-linear");
