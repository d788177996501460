/** RankSeg ablation, camvid: row "gt-eval" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("camvid", "gt-eval");
