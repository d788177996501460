import { Effect } from "effect";
import { assert, assertEquals } from "./assert.ts";
import { CASES, formatReport, gradcheck, NON_DIFFERENTIABLE } from "../runtime/gradcheck.ts";
import { type Op, RULES } from "../ir/primitives.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { grad } from "../ir/autodiff.ts";
import { value } from "../ir/value.ts";
import { decodeOnnx, toOnnx } from "../onnx/lower.ts";
import { runGraph } from "./graph_runner.ts";

Deno.test("gradcheck: every differentiable primitive's VJP matches central differences", async () => {
  const report = await Effect.runPromise(gradcheck());
  const text = formatReport(report);
  const differentiable = (Object.keys(RULES) as Op[]).filter((op) => !NON_DIFFERENTIABLE.has(op));
  assertEquals(report.failedOps, [], text);
  assertEquals(report.checkedOps.length, differentiable.length);
  assert(text.endsWith(`gradcheck: ${differentiable.length} ops checked, 0 failed`), text);
  for (const r of report.results) assert(r.maxError <= r.tolerance, `${r.name}: ${r.maxError}`);
});

Deno.test("gradcheck: a wrong VJP is caught", async () => {
  // exp's rule, but claiming d/dx exp(x) = 2·exp(x): the check must fail.
  const original = RULES.exp.vjp;
  (RULES.exp as { vjp: typeof original }).vjp = (
    p,
    outs,
    cts,
    o,
  ) => [o.mul(original(p, outs, cts, o)[0]!, 2)];
  try {
    const report = await Effect.runPromise(gradcheck(CASES.filter((c) => c.ops.includes("exp"))));
    assert(report.failedOps.includes("exp"), formatReport(report));
  } finally {
    (RULES.exp as { vjp: typeof original }).vjp = original;
  }
});

Deno.test("gradcheck: Relu's and Clip's x̄ are a masked multiply (no Where: ORT runs it on one thread), 0 outside", async () => {
  const g = new Graph("masks");
  const x = o.input(g, "x", [8]);
  const ct = o.input(g, "ct", [8]);
  // sum(ct · f(x)) has x̄ = ct where f passes x through and 0 where it clips.
  g.output("relu", grad(o.sum(o.mul(ct, o.relu(x))), [x])[0]);
  g.output("relu6", grad(o.sum(o.mul(ct, o.clip(x, 0, 6))), [x])[0]);
  const ops = decodeOnnx(toOnnx(g).bytes).graph!.node!.map((n) => n.opType!);
  assertEquals(ops.filter((op) => op === "Where"), []);
  const xs = [-3, -0, 0, 0.5, 5.5, 6, 6.5, 100];
  const cts = [1, 2, 3, 4, 5, 6, 7, 8];
  const r = await runGraph(g, {
    x: value("float32", Float32Array.from(xs), [8]),
    ct: value("float32", Float32Array.from(cts), [8]),
  });
  // Relu passes x > 0; Clip passes min ≤ x ≤ max (where its output equals its input).
  assertEquals(r.relu, [0, 0, 0, 4, 5, 6, 7, 8]);
  assertEquals(r.relu6, [0, 2, 3, 4, 5, 6, 0, 0]);
});
