/**
 * Data-parallel training plans: one rank's stages when N processes train one run, each on its shard of
 * every global batch (train/train.ts gives each rank its shard).
 *
 * The rank's training graph is traced with `dataParallel` (ir/count_normalized.ts: loss sites that divide
 * by a data-dependent count output it and read their share of the global count) and split by
 * `minimizeDataParallel` (ir/optim.ts: gradients out, the update reads the mean gradient). The plan runs
 *
 *   [the kind's stages before the graph] → counts → all-reduce counts → gradients → all-reduce gradients
 *   and loss terms → update → [the kind's stages after the graph]
 *
 * where counts, gradients and update are three parts of the same graph (each stage lowers only what its
 * outputs need: the count part of a pixel loss reads the labels alone), and the all-reduces are host stages
 * over a `Collective` (host/all_reduce.ts). Without count sites the first two stages are left out. The
 * optimizer — AdamW's moments, the global gradient-norm clip — sees the ranks' mean gradient: the step is the
 * one-process step on the global batch, up to float summation order.
 */
import type { Graph } from "../ir/graph.ts";
import type { Collective } from "../ir/collective.ts";
import { COUNT, countSites } from "../ir/count_normalized.ts";
import type { DataParallelParts } from "../ir/optim.ts";
import { graphStage, NEXT, type Stage } from "../ir/plan.ts";
import { countReduceStage, gradientReduceStage, type ReduceStats, reduceStats } from "../host/all_reduce.ts";

export interface DataParallelOptions {
  readonly collective: Collective;
  /** The largest gradient bucket in bytes (default: all gradients in one all-reduce). */
  readonly bucketBytes?: number;
  /** Where the all-reduce stages add their calls, seconds and bytes. */
  readonly stats?: ReduceStats;
}

/** The parts of a data-parallel training graph and the stages a kind runs around it. */
export interface DataParallelGraph {
  readonly graph: Graph;
  readonly parts: DataParallelParts;
  /** The loss outputs, averaged over the ranks (every rank then logs the one-process numbers). */
  readonly losses: readonly string[];
  readonly before?: readonly Stage[];
  readonly after?: readonly Stage[];
}

/** A data-parallel training plan's stages; `graph` declares the plan's state. */
export const dataParallelStages = (
  { graph, parts, losses, before = [], after = [] }: DataParallelGraph,
  { collective, bucketBytes, stats = reduceStats() }: DataParallelOptions,
): { graph: Graph; stages: Stage[] } => {
  const sites = countSites(graph.outputs.keys());
  const counts = sites.map((s) => `${COUNT}${s}`);
  const update = new Set(parts.updateOutputs);
  const skip = new Set([...counts, ...update]);
  const gradientOutputs = [...graph.outputs.keys()].filter((n) => !skip.has(n));
  const forward = gradientOutputs.filter((n) => n.startsWith(NEXT));
  if (forward.length > 0) {
    // State a forward pass updates (running statistics) would drift apart between the ranks.
    throw new Error(`internal: data-parallel training of a graph whose forward updates state: ${forward[0]}`);
  }
  return {
    graph,
    stages: [
      ...before,
      ...(sites.length > 0
        ? [graphStage(graph, { outputs: counts, name: "counts" }), countReduceStage(sites, collective, stats)]
        : []),
      graphStage(graph, { outputs: gradientOutputs, name: "gradients" }),
      gradientReduceStage({ gradients: parts.gradients, losses, collective, bucketBytes, stats }),
      graphStage(graph, { outputs: parts.updateOutputs, name: "update" }),
      ...after,
    ],
  };
};
