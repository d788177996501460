/** Test helper: run a graph's outputs once through ONNX Runtime; values come back as plain numbers. */
import { Effect } from "effect";
import type { HostArray } from "../ir/dtype.ts";
import type { Graph } from "../ir/graph.ts";
import { execute } from "../runtime/execute.ts";
import { graphStage, plan } from "../ir/plan.ts";
import type { Value } from "../ir/value.ts";

export const runGraph = (
  g: Graph,
  feeds: Record<string, Value>,
  { state, seed = 0, outputs }: { state?: Record<string, Value>; seed?: number; outputs?: string[] } = {},
): Promise<Record<string, number[]>> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(plan(g.name, g, [graphStage(g, { outputs })]), { seed });
    for (const [k, v] of Object.entries(state ?? {})) ex.state.set(k, v);
    const out = yield* ex.run(feeds);
    return Object.fromEntries([...out].map(([k, v]) => [k, Array.from(v.data as HostArray, Number)]));
  })));
