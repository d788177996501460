/**
 * The webgpu lowering of ArgMax and TopK (`ir/device_indices.ts`) gives the default lowering's indices
 * and values, ties included, with no ArgMax or TopK node left. Both lowerings run on the CPU provider
 * (the values do not depend on the device), so these need no adapter; one more test runs the webgpu
 * lowering on the device, where every node must run (skipped, saying why, without an adapter).
 */
import { Effect } from "effect";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "./assert.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { decodeOnnx, toOnnx } from "../onnx/lower.ts";
import { execute } from "../runtime/execute.ts";
import { graphStage, plan } from "../ir/plan.ts";
import { value } from "../ir/value.ts";
import type { LowerTarget } from "../ir/primitives.ts";
import { random } from "../core/random.ts";
import { deviceTestName, nodesOnCpu, webgpuUnavailable } from "./webgpu_device.ts";

const unavailable = await webgpuUnavailable("device_indices_test.ts");

const SHAPE: readonly number[] = [3, 7, 5];

/** ArgMax over every axis (with and without keepDims) and TopK over every axis, largest and smallest. */
const indexGraph = () => {
  const g = new Graph("indices");
  const x = o.input(g, "x", [...SHAPE]);
  for (const [axis, n] of SHAPE.entries()) {
    g.output(`argMax${axis}`, o.argMax(x, axis));
    g.output(`argMaxKeep${axis}`, o.argMax(x, axis - SHAPE.length, true));
    for (const k of [1, Math.ceil(n / 2), n]) {
      for (const largest of [true, false]) {
        const { values, indices } = o.topK(x, k, axis, largest);
        g.output(`topK${axis}.${k}.${largest}.values`, values);
        g.output(`topK${axis}.${k}.${largest}.indices`, indices);
      }
    }
  }
  const tail = o.topK(x, 2, -1).indices; // a negative axis, indices only
  g.output("topKTail", tail);
  return g;
};

/** Few distinct values (many ties); signed zeros and infinities when `extremes`. */
const tiedInput = (r: ReturnType<typeof random>, levels: number, extremes: boolean) =>
  Float32Array.from({ length: 3 * 7 * 5 }, () => {
    const v = Math.floor(r.uniform() * levels) - 1;
    if (extremes && r.uniform() < 0.1) return [Infinity, -Infinity, -0][Math.floor(r.uniform() * 3)];
    return levels === 1000 ? v / 7 : v;
  });

const run = (target: LowerTarget, x: Float32Array) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const g = indexGraph();
    const stage = graphStage(g, { name: target, target });
    const ex = yield* execute(plan(target, g, [stage]), { provider: "cpu" });
    const out = yield* ex.run({ x: value("float32", x, [...SHAPE]) });
    return new Map([...out].map(([k, v]) => [k, Array.from(v.data as ArrayLike<number | bigint>, Number)]));
  })));

Deno.test("webgpu lowering of ArgMax and TopK: no ArgMax or TopK node remains", () => {
  const nodes = decodeOnnx(toOnnx(indexGraph(), { target: "webgpu" }).bytes).graph!.node!;
  const ops = new Set(nodes.map((n) => n.opType));
  assert(!ops.has("ArgMax") && !ops.has("TopK"), [...ops].join(" "));
  const cpu = new Set(decodeOnnx(toOnnx(indexGraph()).bytes).graph!.node!.map((n) => n.opType));
  assertEquals([...cpu].sort(), ["ArgMax", "TopK"]);
  // Past RANK_TOPK_LIMIT pairwise comparisons (here 4096² per row), TopK keeps ONNX's own node.
  const big = new Graph("big");
  big.output("top", o.topK(o.input(big, "x", [2, 4096]), 3, 1).indices);
  const bigOps = decodeOnnx(toOnnx(big, { target: "webgpu" }).bytes).graph!.node!.map((n) => n.opType);
  assert(bigOps.includes("TopK"), bigOps.join(" "));
});

Deno.test("webgpu lowering of ArgMax and TopK: a hand-computed row with ties", async () => {
  const g = new Graph("row");
  const x = o.input(g, "x", [5]);
  g.output("argMax", o.argMax(x, 0));
  g.output("top3", o.topK(x, 3, 0).indices);
  g.output("bottom2", o.topK(x, 2, 0, false).indices);
  g.output("top3Values", o.topK(x, 3, 0).values);
  for (const target of ["cpu", "webgpu"] as const) {
    const out = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const stage = graphStage(g, { name: target, target });
      const ex = yield* execute(plan(target, g, [stage]), { provider: "cpu" });
      return yield* ex.run({ x: value("float32", Float32Array.of(1, 3, 3, -0, 0), [5]) });
    })));
    const read = (name: string) => Array.from(out.get(name)!.data as ArrayLike<number | bigint>, Number);
    // Ties go to the lower index: the first 3 is the max; 3, 3 then 1; −0 and +0 are equal, −0 first.
    assertEquals(read("argMax"), [1], target);
    assertEquals(read("top3"), [1, 2, 0], target);
    assertEquals(read("bottom2"), [3, 4], target);
    assertEquals(read("top3Values"), [3, 3, 1], target);
  }
});

Deno.test("webgpu lowering of ArgMax and TopK: the default lowering's values on random inputs with ties", async () => {
  const r = random(15);
  for (let trial = 0; trial < 6; trial++) {
    const x = tiedInput(r, [2, 3, 5, 1000][trial % 4], trial >= 4);
    const [cpu, gpu] = [await run("cpu", x), await run("webgpu", x)];
    assertEquals([...gpu.keys()].sort(), [...cpu.keys()].sort());
    for (const [name, expected] of cpu) assertEquals(gpu.get(name), expected, `trial ${trial}: ${name}`);
  }
});

Deno.test({
  name: deviceTestName(
    "webgpu lowering of ArgMax and TopK: on the device, no node on the CPU, the CPU's values",
    unavailable,
  ),
  ignore: unavailable !== undefined,
  fn: async () => {
    const dir = await mkdtemp(join(tmpdir(), "kappa-device-indices-"));
    try {
      const x = tiedInput(random(16), 3, true);
      const expected = await run("cpu", x);
      const got = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
        const g = indexGraph();
        const ex = yield* execute(plan("indices", g, [graphStage(g)]), {
          provider: "webgpu",
          profilePrefix: join(dir, "webgpu"),
        });
        const out = yield* ex.run({ x: value("float32", x, [...SHAPE]) });
        return new Map(
          [...out].map(([k, v]) => [k, Array.from(v.data as ArrayLike<number | bigint>, Number)]),
        );
      })));
      for (const [name, values] of expected) assertEquals(got.get(name), values, name);
      assertEquals(Object.fromEntries(nodesOnCpu(join(dir, "webgpu"))), {});
    } finally {
      await rm(dir, { recursive: true });
    }
  },
});
