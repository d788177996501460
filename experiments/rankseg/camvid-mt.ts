/** RankSeg ablation, camvid: row "mt" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("camvid", "mt");
