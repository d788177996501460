/** RankSeg ablation, camvid: row "baseline" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("camvid", "baseline");
