/** LarvSeg grid, ccp: row "rankseg-larvseg" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("ccp", "rankseg-larvseg");
