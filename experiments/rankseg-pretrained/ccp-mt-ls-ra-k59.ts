/** RankSeg ablation on the pretrained MobileNetV2, ccp: the κ sweep's row "mt-ls-ra", κ = 59 (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("ccp", "mt-ls-ra", 59);
