/** RankSeg ablation on the pretrained MobileNetV2, coco133: row "baseline" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("coco133", "baseline");
