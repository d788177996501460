/** LarvSeg grid, ccp with clothing/ as its image-level source: row "ca-cross" (see grid.ts; novel classes by `clothingNovelClasses`). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("ccp+clothing", "ca-cross");
