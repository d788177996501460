/** RankSeg ablation, camvid: row "mt-ls" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("camvid", "mt-ls");
