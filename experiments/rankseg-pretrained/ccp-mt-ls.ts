/** RankSeg ablation on the pretrained MobileNetV2, ccp: row "mt-ls" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("ccp", "mt-ls");
