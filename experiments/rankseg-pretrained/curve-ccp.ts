/**
 * The learning curve that set the grid's step budget: the ccp baseline row, one seed, validated every
 * 150 steps (`deno task train experiments/rankseg-pretrained/curve-ccp.ts`). Not a grid row.
 */
import { rowExperiment } from "./grid.ts";

export default rowExperiment("ccp", "baseline", undefined, { steps: 600, evalEvery: 150 });
