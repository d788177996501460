/** The "remask" row of the ReMaX grid on coco133 (experiments/panoptic/grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("remask");
