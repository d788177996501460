/** ξ from image-level sources on ccp: row "clothing" (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("clothing");
