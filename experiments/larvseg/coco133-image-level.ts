/** LarvSeg grid, coco133: row "image-level" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("coco133", "image-level");
