/** Forward values of primitives against hand-computed results, and construction-time errors. */
import { assertClose, assertEquals, assertThrowsMessage } from "./assert.ts";
import { runGraph } from "./graph_runner.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { value } from "../ir/value.ts";
import { attention } from "../layers/attention.ts";

const f32 = (data: number[], shape: number[]) => value("float32", Float32Array.from(data), shape);
const i64 = (data: number[], shape: number[]) => value("int64", BigInt64Array.from(data.map(BigInt)), shape);

Deno.test("ops: comparison, logic, sign, argMax, oneHot and topK indices", async () => {
  const g = new Graph("t");
  const x = o.input(g, "x", [2, 3]);
  const idx = o.input(g, "idx", [3], "int64");
  g.output("less", o.cast(o.less(x, 0), "float32"));
  g.output("andNot", o.cast(o.and(o.greater(x, -1), o.not(o.equal(x, 2))), "float32"));
  g.output("sign", o.sign(x));
  g.output("argMax", o.argMax(x, 1));
  g.output("oneHot", o.oneHot(idx, 4));
  const top = o.topK(x, 2, 1);
  g.output("topValues", top.values);
  g.output("topIndices", top.indices);
  g.output("smallest", o.topK(x, 1, 1, false).indices);
  const r = await runGraph(g, { x: f32([-2, 0.5, 2, 3, -0.5, 1], [2, 3]), idx: i64([0, 3, 1], [3]) });
  assertEquals(r.less, [1, 0, 0, 0, 1, 0]);
  assertEquals(r.andNot, [0, 1, 0, 1, 1, 1]);
  assertEquals(r.sign, [-1, 1, 1, 1, -1, 1]);
  assertEquals(r.argMax, [2, 0]);
  assertEquals(r.oneHot, [1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
  assertEquals(r.topValues, [2, 0.5, 3, 1]);
  assertEquals(r.topIndices, [2, 1, 0, 2]);
  assertEquals(r.smallest, [0, 1]);
});

Deno.test("ops: gather, scatter-add, slice, pad, concat, where, clip, resize values", async () => {
  const g = new Graph("t");
  const x = o.input(g, "x", [2, 3]);
  const idx = o.input(g, "idx", [2, 2], "int64");
  g.output("gather", o.gather(x, o.constant(g, [2, 0], [2], "int64"), 1));
  g.output("scatter", o.scatterElements(o.zeros(g, [2, 3]), idx, o.full(g, [2, 2], 1), 1, "add"));
  g.output("slice", o.slice(x, [1], [-1], [-(2 ** 62)], [-1])); // reverse columns
  g.output("pad", o.pad(x, [0, 1, 0, 0], 9));
  g.output("concat", o.concat([x, x], 0));
  g.output("where", o.where(o.greater(x, 1), x, -1));
  g.output("clip", o.clip(x, 0, 2));
  // 1×1×1×2 → 1×1×1×4, half-pixel bilinear: [a, (3a+b)/4, (a+3b)/4, b]
  g.output("resize", o.resize(o.reshape(o.slice(x, [0, 1], [0, 0], [1, 2]), [1, 1, 1, 2]), 1, 4));
  const r = await runGraph(g, { x: f32([1, 2, 3, 4, 5, 6], [2, 3]), idx: i64([0, 0, 2, 1], [2, 2]) });
  assertEquals(r.gather, [3, 1, 6, 4]);
  assertEquals(r.scatter, [2, 0, 0, 0, 1, 1]);
  assertEquals(r.slice, [3, 2, 1, 6, 5, 4]);
  assertEquals(r.pad, [9, 1, 2, 3, 9, 4, 5, 6]);
  assertEquals(r.concat, [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
  assertEquals(r.where, [-1, 2, 3, 4, 5, 6]);
  assertEquals(r.clip, [1, 2, 2, 2, 2, 2]);
  assertClose(r.resize, [1, 1.25, 1.75, 2]);
});

Deno.test("ops: a shape error names the layer path, the op and both shapes", () => {
  const g = new Graph("t");
  const x = o.input(g, "x", [2, 16, 64]);
  const msg = assertThrowsMessage(() => o.matmul(x, o.input(g, "w", [32, 64])), "inner dimensions differ");
  assertEquals(msg, "<root>: matmul(f32[2,16,64], f32[32,64]): inner dimensions differ (64 vs 32)");
  // Inside a layer: 64 channels cannot be split into 3 heads.
  const layer = assertThrowsMessage(
    () => g.scope("model", () => g.scope("psi", () => attention(x, { heads: 3 }))),
    "model.psi.attn",
  );
  assertEquals(layer, "model.psi.attn: width 64 is not divisible by heads (3)");
  const scoped = assertThrowsMessage(
    () => g.scope("model", () => g.scope("psi", () => o.add(x, o.input(g, "y", [2, 15, 64])))),
    "model.psi",
  );
  assertEquals(
    scoped,
    "model.psi: add(f32[2,16,64], f32[2,15,64]): shapes do not broadcast: f32[2,16,64], f32[2,15,64]",
  );
  assertThrowsMessage(() => o.input(g, "x", [1]), "x: name is already defined");
  assertThrowsMessage(() => o.reshape(x, [5, 5]), "cannot reshape f32[2,16,64] (2048 elements) to [5,5]");
});
