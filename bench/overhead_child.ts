/**
 * One profiled run of the perf model's training step in a process of its own (started by
 * bench/perf.ts): the runtime's host-memory recycling changes the process's allocator settings, so each
 * setting is measured in a fresh process. Argument: JSON { threads, recycle, warmup, runs }; prints the
 * `StepProfile` as one JSON line.
 */
import { graphStage, plan } from "../mod.ts";
import { profileSteps } from "./profile.ts";
import { PERF_MODEL, perfFeeds, perfTrainingGraph } from "./segmenter_model.ts";

const { threads, recycle, warmup, runs } = JSON.parse(Deno.args[0]);
const g = perfTrainingGraph(PERF_MODEL);
const p = plan(g.name, g, [graphStage(g)]);
const profile = await profileSteps(p, perfFeeds(PERF_MODEL), threads, { warmup, runs }, {
  recycleStateMemory: recycle,
});
console.log(JSON.stringify(profile));
