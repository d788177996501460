/** ξ from image-level sources on ccp: row "both" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("both");
