/** LarvSeg grid, ccp: row "ca-cross" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("ccp", "ca-cross");
