/** RankSeg ablation, camvid: row "gt-train-eval" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("camvid", "gt-train-eval");
