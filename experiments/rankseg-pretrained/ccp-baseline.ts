/** RankSeg ablation on the pretrained MobileNetV2, ccp: row "baseline" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("ccp", "baseline");
