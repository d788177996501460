/** LarvSeg grid, coco133: row "rankseg-larvseg" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("coco133", "rankseg-larvseg");
