/** RankSeg ablation, camvid: reference row "mt-ls-ra" with the linear ψ (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("camvid", "mt-ls-ra-linear");
