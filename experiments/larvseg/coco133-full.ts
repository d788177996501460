/** LarvSeg grid, coco133: row "full" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("coco133", "full");
