/** RankSeg ablation, camvid: reference row "baseline" with the linear ψ (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("camvid", "baseline-linear");
