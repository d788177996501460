/** ξ from image-level sources on ccp: row "ccp-tags" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("ccp-tags");
