/** RankSeg ablation, camvid: row "mt-ls-rln" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("camvid", "mt-ls-rln");
