/** RankSeg ablation on the pretrained MobileNetV2, coco133: the κ sweep's row "mt-ls-ra", κ = 50 (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("coco133", "mt-ls-ra", 50);
