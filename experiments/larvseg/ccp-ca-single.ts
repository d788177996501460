/** LarvSeg grid, ccp: row "ca-single" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("ccp", "ca-single");
