/** Autodiff behaviours beyond single-op VJPs: fan-out, integer inputs, stopGradient, unused parameters. */
import { assertClose, assertEquals, assertThrowsMessage } from "./assert.ts";
import { runGraph } from "./graph_runner.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { grad } from "../ir/autodiff.ts";
import { value } from "../ir/value.ts";

const f64 = (data: number[], shape: number[]) => value("float64", Float64Array.from(data), shape);

Deno.test("autodiff: fan-out accumulates, integer indices get none, stopGradient blocks, unused params get zero", async () => {
  const g = new Graph("t");
  const x = o.input(g, "x", [3], "float64");
  const y = o.input(g, "y", [3], "float64");
  const unused = o.input(g, "unused", [2], "float64");
  const idx = o.input(g, "idx", [2], "int64");
  // L = Σ x·x (fan-out: x used twice) + Σ gather(x, idx) + Σ stopGradient(y)·x
  const loss = o.add(o.add(o.sum(o.mul(x, x)), o.sum(o.gather(x, idx))), o.sum(o.mul(o.stopGradient(y), x)));
  const [gx, gy, gu] = grad(loss, [x, y, unused]);
  g.output("gx", gx);
  g.output("gy", gy);
  g.output("gu", gu);
  const r = await runGraph(g, {
    x: f64([1, 2, 3], [3]),
    y: f64([10, 20, 30], [3]),
    unused: f64([0, 0], [2]),
    idx: value("int64", BigInt64Array.from([2n, 2n]), [2]),
  });
  // ∂L/∂x = 2x + [0, 0, 2] (index 2 gathered twice) + y
  assertClose(r.gx, [2 + 10, 4 + 20, 6 + 2 + 30]);
  assertEquals(r.gy, [0, 0, 0]);
  assertEquals(r.gu, [0, 0]);
});

Deno.test("autodiff: the loss must be a float scalar", () => {
  const g = new Graph("t");
  const x = o.input(g, "x", [3]);
  assertThrowsMessage(() => grad(x, [x]), "grad: loss must be a float scalar, got float32[3]");
});

Deno.test("autodiff: second-order gradients are ordinary IR (d²/dx² of x³ = 6x)", async () => {
  const g = new Graph("t");
  const x = o.input(g, "x", [2], "float64");
  const [dx] = grad(o.sum(o.mul(o.mul(x, x), x)), [x]);
  const [ddx] = grad(o.sum(dx), [x]);
  g.output("ddx", ddx);
  const r = await runGraph(g, { x: f64([1.5, -2], [2]) });
  assertClose(r.ddx, [9, -12]);
});
