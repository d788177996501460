/**
 * The learning curve that set the grid's step budget: the coco133 baseline row, one seed, validated every
 * 150 steps (`deno task train experiments/rankseg-pretrained/curve-coco133.ts`). Not a grid row.
 */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("coco133", "baseline", undefined, { steps: 600, evalEvery: 150 });
