/** ξ from image-level sources on ccp: row "clothing-complete" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("clothing-complete");
