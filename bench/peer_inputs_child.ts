/**
 * Writes the perf model's peer input file (our seeded initial parameters, the batch, the settings) to the
 * path in the first argument: what `deno task bench perf` hands every peer, for trying a peer alone.
 */
import { graphStage, plan } from "../mod.ts";
import { initialState } from "./perf_runs.ts";
import { peerInputs, PERF_MODEL, perfTrainingGraph } from "./segmenter_model.ts";

const g = perfTrainingGraph(PERF_MODEL);
const p = plan(g.name, g, [graphStage(g)]);
await Deno.writeFile(Deno.args[0], peerInputs(PERF_MODEL, g, await initialState(p, 0)));
