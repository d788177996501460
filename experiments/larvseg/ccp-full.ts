/** LarvSeg grid, ccp: row "full" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("ccp", "full");
