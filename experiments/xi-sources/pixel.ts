/** ξ from image-level sources on ccp: row "pixel" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("pixel");
