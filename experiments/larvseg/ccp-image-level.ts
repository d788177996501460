/** LarvSeg grid, ccp: row "image-level" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("ccp", "image-level");
