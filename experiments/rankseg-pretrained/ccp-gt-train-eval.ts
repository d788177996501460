/** RankSeg ablation on the pretrained MobileNetV2, ccp: row "gt-train-eval" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("ccp", "gt-train-eval");
