/** LarvSeg grid, ccp with clothing/'s novel classes: row "full", the fully supervised upper bound those rows' novel mIoU is measured against (see grid.ts). */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("ccp+clothing", "full");
