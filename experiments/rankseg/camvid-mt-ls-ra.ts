/** RankSeg ablation, camvid: row "mt-ls-ra" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("camvid", "mt-ls-ra");
