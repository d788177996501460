/** RankSeg ablation, coco133: row "mt" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("coco133", "mt");
