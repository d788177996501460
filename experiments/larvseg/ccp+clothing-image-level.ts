/** LarvSeg grid, ccp with clothing/ as its image-level source: row "image-level" (see grid.ts; novel classes by `clothingNovelClasses`). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("ccp+clothing", "image-level");
