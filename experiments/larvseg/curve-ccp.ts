/**
 * The budget probe beside the grid: the image-level row on ccp, one seed, 4× the grid's steps, validated
 * every 150 steps, to see whether novel-class IoU appears with a longer schedule
 * (`deno task train experiments/larvseg/curve-ccp.ts`; `grid larvseg` runs it first). Not a grid row.
 */
import { rowExperiment, STEPS } from "./grid.ts";

export default rowExperiment("ccp", "image-level", { steps: 4 * STEPS, evalEvery: 150 });
