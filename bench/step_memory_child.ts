/**
 * The peak memory of our training step, in a process of its own (started by bench/perf.ts), as the
 * peers measure theirs: the process's RSS before the first step and its peak RSS (VmHWM) after `runs`
 * steps. Argument: JSON { threads, runs }; prints { rssBeforeKiB, peakRssKiB } as one JSON line.
 */
import { Effect } from "effect";
import { execute, graphStage, plan } from "../mod.ts";
import { PERF_MODEL, perfFeeds, perfTrainingGraph } from "./segmenter_model.ts";

const statusKiB = (field: string): number =>
  Number(Deno.readTextFileSync("/proc/self/status").match(new RegExp(`${field}:\\s+(\\d+)`))?.[1] ?? NaN);

const { threads, runs } = JSON.parse(Deno.args[0]);
const g = perfTrainingGraph(PERF_MODEL);
const p = plan(g.name, g, [graphStage(g)]);
const feeds = perfFeeds(PERF_MODEL);
const rssBeforeKiB = statusKiB("VmRSS");
await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
  const ex = yield* execute(p, { seed: 0, threads, optimization: "all" });
  for (let i = 0; i < runs; i++) yield* ex.run(feeds);
})));
console.log(JSON.stringify({ rssBeforeKiB, peakRssKiB: statusKiB("VmHWM") }));
