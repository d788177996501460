/** Test helper: a plan whose host stage keeps state of its own (as LarvSeg's memory bank does). */
import { Effect } from "effect";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { zeros } from "../ir/init.ts";
import { graphStage, type HostStage, plan } from "../ir/plan.ts";
import { value } from "../ir/value.ts";

/**
 * Host state `seen` [1] (zeros) that the `tally` stage adds 1 to in place before the graph runs, passing
 * the new count on as `seenNow`; the graph outputs `total` = Σx + seenNow.
 */
export const hostStatePlan = () => {
  const g = new Graph("tally");
  const x = o.input(g, "x", [3]);
  g.output("total", o.add(o.sum(x), o.reshape(o.input(g, "seenNow", [1]), [])));
  const tally: HostStage = {
    _tag: "HostStage",
    name: "tally",
    outputs: ["seenNow"],
    state: [{ name: "seen", dtype: "float32", shape: [1], init: zeros }],
    run: (env) =>
      Effect.sync(() => {
        const seen = env.get("seen")!.data as Float32Array;
        seen[0] += 1;
        return { seenNow: value("float32", Float32Array.of(seen[0]), [1]) };
      }),
  };
  return plan("tally", g, [tally, graphStage(g)]);
};
