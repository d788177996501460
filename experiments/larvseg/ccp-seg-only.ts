/** LarvSeg grid, ccp: row "seg-only" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("ccp", "seg-only");
