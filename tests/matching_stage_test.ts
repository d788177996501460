/** The Hungarian host stage: per-image counts of valid targets, both outputs, and its errors. */
import { Effect, Exit } from "effect";
import { assert, assertEquals, assertThrowsMessage } from "./assert.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { execute } from "../runtime/execute.ts";
import { graphStage, plan } from "../ir/plan.ts";
import { value } from "../ir/value.ts";
import { matchBatch, matchingStage } from "../host/matching_stage.ts";

const NAMES = { costs: "costs", counts: "counts", index: "match.index", matrix: "match.matrix" };

Deno.test("matchBatch: padded targets never take part; fewer targets than queries and the reverse", () => {
  // Image 0: 3 queries, 2 of 3 targets valid; the padded column is the cheapest and must be ignored.
  // Image 1: all 3 valid.
  const costs = Float32Array.of(
    ...[-0.9, -0.1, -5, -0.8, -0.7, -5, -0.1, -0.2, -5],
    ...[0, 1, 2, 1, 0, 2, 2, 2, 0],
  );
  const { index, matrix } = matchBatch(costs, BigInt64Array.of(2n, 3n), [2, 3, 3]);
  // Image 0: query 0 → 0 (−0.9) and query 1 → 1 (−0.7): −1.6 beats −0.8 − 0.1 or −0.1 − 0.2 options.
  assertEquals(Array.from(index), [0n, 1n, -1n, 0n, 1n, 2n]);
  assertEquals(Array.from(matrix), [1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]);
  // 2 queries, 3 targets: one target stays unmatched, every query is matched.
  const more = matchBatch(Float32Array.of(1, 0, 5, 0, 1, 5), Int32Array.of(3), [1, 2, 3]);
  assertEquals(Array.from(more.index), [1n, 0n]);
  // No valid target: nothing matched.
  assertEquals(Array.from(matchBatch(Float32Array.of(1, 2), [0], [1, 2, 1]).index), [-1n, -1n]);
  assertThrowsMessage(
    () => matchBatch(Float32Array.of(1, 2), [2], [1, 2, 1]),
    "image 0: 2 valid targets, expected 0..1",
  );
});

Deno.test("matching stage: between a cost graph and a loss graph, in one plan", async () => {
  // Graph 1: costs = −(query scores · target scores); graph 2: each query's matched target score.
  const [b, n, m] = [1, 3, 2];
  const g = new Graph("match");
  const q = o.input(g, "q", [b, n, 1]);
  const t = o.input(g, "t", [b, 1, m]);
  g.output("costs", o.neg(o.mul(q, t)));
  const matrix = o.input(g, NAMES.matrix, [b, n, m]);
  g.output("matched", o.matmul(matrix, o.reshape(t, [b, m, 1])));
  const p = plan("match", g, [
    graphStage(g, { outputs: ["costs"], name: "costs" }),
    matchingStage(NAMES),
    graphStage(g, { outputs: ["matched"], name: "loss" }),
  ]);
  assertEquals(p.feeds.map((f) => f.name).sort(), ["q", "t"]);
  const run = (counts: BigInt64Array) =>
    Effect.runPromiseExit(Effect.scoped(Effect.gen(function* () {
      const ex = yield* execute(p);
      return yield* ex.run({
        q: value("float32", Float32Array.of(1, 3, 2), [b, n, 1]),
        t: value("float32", Float32Array.of(10, 1), [b, 1, m]),
        counts: value("int64", counts, [b]),
      });
    })));
  const ok = await run(BigInt64Array.of(2n));
  assert(Exit.isSuccess(ok));
  const out = ok.value;
  // The largest query (3) takes the largest target (10), the next (2) the other: max Σ q·t = 32.
  assertEquals(Array.from(out.get("match.index")!.data as BigInt64Array), [-1n, 0n, 1n]);
  assertEquals(Array.from(out.get("matched")!.data as Float32Array), [0, 10, 1]);
  const bad = await run(BigInt64Array.of(5n));
  assert(Exit.isFailure(bad));
  const text = bad.cause.toString();
  assert(text.includes("matching") && text.includes("image 0: 5 valid targets, expected 0..2"), text);
});

Deno.test("matching stage: a wrong input type is named", async () => {
  const stage = matchingStage({ ...NAMES, name: "hungarian" });
  const env = new Map([
    ["costs", value("float32", new Float32Array(4), [2, 2])],
    ["counts", value("int64", new BigInt64Array(2), [2])],
  ]);
  const exit = await Effect.runPromiseExit(stage.run(env));
  assert(Exit.isFailure(exit));
  assert(
    exit.cause.toString().includes('hungarian: input "costs" is float32[2,2], expected float32[b, N, M]'),
  );
  const missing = await Effect.runPromiseExit(stage.run(new Map()));
  assert(Exit.isFailure(missing) && missing.cause.toString().includes('missing input "costs"'));
});
