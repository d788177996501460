/** LarvSeg grid, coco133: row "ca-single" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("coco133", "ca-single");
