/** LarvSeg grid, coco133: row "seg-only" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("coco133", "seg-only");
