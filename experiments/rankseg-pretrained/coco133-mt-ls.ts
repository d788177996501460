/** RankSeg ablation on the pretrained MobileNetV2, coco133: row "mt-ls" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("coco133", "mt-ls");
