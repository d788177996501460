/** Runtime: execution providers, export to a self-contained ONNX file, printing and describe. */
import { Effect, Exit } from "effect";
import * as ort from "onnxruntime-node";
import { assert, assertClose, assertEquals } from "./assert.ts";
import { runGraph } from "./graph_runner.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { exportOnnx } from "../onnx/export.ts";
import { describe } from "../ir/describe.ts";
import { printGraph } from "../ir/print.ts";
import { initialize, ones } from "../ir/init.ts";
import { execute, ProviderUnavailable } from "../runtime/execute.ts";
import { graphStage, type HostStage, NEXT, plan } from "../ir/plan.ts";
import { value } from "../ir/value.ts";
import { linear } from "../layers/linear.ts";
import { hostStatePlan } from "./host_state_plan.ts";

const tinyGraph = (batch: number) => {
  const g = new Graph("tiny");
  const x = o.input(g, "x", [batch, 4, 3]);
  const h = g.scope("model", () => o.gelu(linear(x, 5, { name: "fc1" })));
  const y = g.scope("model", () => linear(h, 2, { name: "fc2" }));
  g.output("y", y);
  g.output("pooled", o.mean(y, [1]));
  return g;
};

const openWith = (provider: "webgpu" | "cuda") =>
  Effect.runPromiseExit(Effect.scoped(Effect.gen(function* () {
    const g = tinyGraph(1);
    yield* execute(plan("tiny", g, [graphStage(g)]), { provider });
  })));

Deno.test("runtime: an unavailable execution provider is a clear error, never a silent fallback", async () => {
  const cuda = await openWith("cuda");
  assert(Exit.isFailure(cuda));
  const error = Exit.isFailure(cuda) ? cuda.cause.toString() : "";
  assert(
    error.includes("ProviderUnavailable") && error.includes('"cuda"') && error.includes("does not bundle"),
    error,
  );
  const webgpu = await openWith("webgpu");
  if (Exit.isFailure(webgpu)) {
    // No GPU here: the failure must name the provider and what is missing.
    const text = webgpu.cause.toString();
    assert(
      text.includes("ProviderUnavailable") && text.includes('"webgpu"') && /Vulkan|adapter/i.test(text),
      text,
    );
  }
  const err = new ProviderUnavailable({ provider: "cuda", reason: "x" });
  assertEquals(err.message, 'execution provider "cuda" is unavailable: x');
});

Deno.test("runtime: export embeds parameters and has a dynamic batch dimension", async () => {
  const g = tinyGraph(2);
  const state = new Map(
    ["model.fc1.weight", "model.fc1.bias", "model.fc2.weight", "model.fc2.bias"].map((name) => {
      const t = g.lookup(name)!;
      const init = g.producer(t).prim;
      if (init.op !== "variable") throw new Error(name);
      return [name, initialize(init.init, name, "float32", t.shape, 3)] as const;
    }),
  );
  const bytes = exportOnnx(g, { outputs: ["y", "pooled"], state, dynamicBatch: 2 });
  const session = await ort.InferenceSession.create(bytes);
  assertEquals(session.inputNames, ["x"]);
  for (const batch of [1, 3]) {
    const xs = Float32Array.from({ length: batch * 12 }, (_, i) => Math.sin(i));
    const exported = await session.run({ x: new ort.Tensor("float32", xs, [batch, 4, 3]) });
    const gb = tinyGraph(batch);
    const expected = await runGraph(gb, { x: value("float32", xs, [batch, 4, 3]) }, {
      state: Object.fromEntries([...state].map(([k, v]) => [k, value("float32", v, gb.lookup(k)!.shape)])),
    });
    assertEquals(exported.y.dims, [batch, 4, 2]);
    assertClose(exported.y.data as Float32Array, expected.y, { atol: 1e-6 });
    assertClose(exported.pooled.data as Float32Array, expected.pooled, { atol: 1e-6 });
  }
  await session.release();
});

Deno.test("print: one line per node with type, op, operands and scope", () => {
  const g = new Graph("p");
  const x = o.input(g, "x", [2, 3]);
  g.output("y", g.scope("model", () => o.relu(linear(x, 4, { name: "fc" }))));
  assertEquals(printGraph(g).split("\n"), [
    '%0:f32[2,3] = input "x"',
    '%1:f32[3,4] = variable "model.fc.weight" truncNormal(0.02)   # model.fc',
    "%2:f32[2,4] = matmul %0 %1   # model.fc",
    '%3:f32[4] = variable "model.fc.bias" zeros()   # model.fc',
    "%4:f32[2,4] = add %2 %3   # model.fc",
    "%5:f32[2,4] = relu %4   # model",
    "outputs: y=%5",
  ]);
});

Deno.test("describe: parameters and FLOPs per scope, counted by hand", () => {
  const rows = describe(tinyGraph(2), { depth: 2 });
  // fc1: 3·5 + 5 params; matmul 2·(2·4·5)·3 = 240, bias add 40, (gelu is in scope "model": 8·40 = 320)
  // fc2: 5·2 + 2 params; matmul 2·(2·4·2)·5 = 160, bias add 16; mean over axis 1: 16
  assertEquals(rows, [
    { scope: "<root>", params: 0, flops: 16 },
    { scope: "model", params: 0, flops: 320 },
    { scope: "model.fc1", params: 20, flops: 280 },
    { scope: "model.fc2", params: 12, flops: 176 },
    { scope: "total", params: 32, flops: 792 },
  ]);
});

Deno.test("runtime: a host stage runs between two graph stages and sees their values", async () => {
  // Graph 1 computes costs; the host picks the argmin (as Hungarian matching will); graph 2 uses it.
  const g = new Graph("two-stage");
  const x = o.input(g, "x", [4]);
  g.output("costs", o.mul(x, x));
  const chosen = o.input(g, "chosen", [1], "int64");
  g.output("picked", o.gather(x, chosen, 0));
  const host: HostStage = {
    _tag: "HostStage",
    name: "argmin",
    outputs: ["chosen"],
    run: (env) =>
      Effect.sync(() => {
        const costs = env.get("costs")!.data as Float32Array;
        const best = costs.indexOf(Math.min(...costs));
        return { chosen: value("int64", BigInt64Array.of(BigInt(best)), [1]) };
      }),
  };
  const p = plan("two-stage", g, [
    graphStage(g, { outputs: ["costs"], name: "costs" }),
    host,
    graphStage(g, { outputs: ["picked"], name: "use" }),
  ]);
  assertEquals(p.feeds.map((f) => f.name), ["x"]);
  const out = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(p);
    return yield* ex.run({ x: value("float32", Float32Array.of(3, -1.5, 0.5, 2), [4]) });
  })));
  assertEquals(Array.from(out.get("chosen")!.data as BigInt64Array), [2n]);
  assertEquals(Array.from(out.get("picked")!.data as Float32Array), [0.5]);
});

/** A counter state `c` that each run adds the fed `x` to, and the sum as an ordinary output. */
const counterPlan = () => {
  const g = new Graph("counter");
  const x = o.input(g, "x", [3]);
  const c = o.variable(g, "c", [3], ones, { trainable: false });
  const next = o.add(c, x);
  g.output(`${NEXT}c`, next);
  g.output("total", o.sum(next));
  return plan("counter", g, [graphStage(g)]);
};

Deno.test("runtime: recycled state memory gives the same values, releases only what runs produced", async () => {
  const x = value("float32", Float32Array.of(1, 2, 3), [3]);
  const trace = (recycleStateMemory: boolean) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const ex = yield* execute(counterPlan(), { recycleStateMemory });
      const initial = ex.state.get("c")!;
      const first = yield* ex.run({ x });
      const produced = first.get(`${NEXT}c`)!;
      const second = yield* ex.run({ x });
      return {
        totals: [first.get("total")!.data[0], second.get("total")!.data[0]],
        state: Array.from(ex.state.get("c")!.data as Float32Array),
        initial: Array.from(initial.data as Float32Array),
        producedLength: produced.data.length,
        secondIsState: second.get(`${NEXT}c`) === ex.state.get("c"),
      };
    })));
  const kept = await trace(false), recycled = await trace(true);
  assertEquals(recycled.totals, [9, 15]);
  assertEquals(recycled.state, [3, 5, 7]);
  assertEquals(kept.totals, recycled.totals);
  assertEquals(kept.state, recycled.state);
  // The initial value came from outside the runs: never released.
  assertEquals(recycled.initial, [1, 1, 1]);
  // The first run's state output was replaced by the second run's: released (detached) when recycling.
  assertEquals(kept.producedLength, 3);
  assertEquals(recycled.producedLength, 0);
  assert(recycled.secondIsState);
});

Deno.test("runtime: a state value set from outside is never released", async () => {
  const x = value("float32", Float32Array.of(1, 1, 1), [3]);
  const outside = value("float32", Float32Array.of(10, 20, 30), [3]);
  const state = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(counterPlan());
    yield* ex.run({ x });
    ex.state.set("c", outside); // e.g. a checkpoint loaded between runs
    yield* ex.run({ x });
    yield* ex.run({ x });
    return Array.from(ex.state.get("c")!.data as Float32Array);
  })));
  assertEquals(Array.from(outside.data as Float32Array), [10, 20, 30]);
  assertEquals(state, [12, 22, 32]);
});

Deno.test("runtime: intra-op threads that sleep instead of spinning compute the same values", async () => {
  const x = value("float32", Float32Array.of(1, 2, 3), [3]);
  const totals = (spinning: boolean) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const ex = yield* execute(counterPlan(), { threads: 2, spinning });
      return [(yield* ex.run({ x })).get("total")!.data[0], (yield* ex.run({ x })).get("total")!.data[0]];
    })));
  assertEquals(await totals(false), await totals(true));
  assertEquals(await totals(false), [9, 15]);
});

Deno.test("runtime: a host stage's own state is plan state, initialized, and updated in place", async () => {
  const p = hostStatePlan();
  assertEquals(p.state.map((s) => s.name), ["seen"]);
  assertEquals(p.feeds.map((f) => f.name), ["x"]);
  const x = value("float32", Float32Array.of(1, 2, 3), [3]);
  const out = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(p);
    const initial = ex.state.get("seen")!;
    const totals: number[] = [];
    for (let i = 0; i < 3; i++) totals.push((yield* ex.run({ x })).get("total")!.data[0] as number);
    const host = yield* ex.hostState();
    return { totals, same: ex.state.get("seen") === initial, seen: host.get("seen")!.data[0] };
  })));
  assertEquals(out, { totals: [7, 8, 9], same: true, seen: 3 });
});
