/**
 * Lowering for the webgpu provider: the ops ONNX Runtime's WebGPU provider would leave to the CPU
 * (LogSoftmax; Equal, Where, GatherElements, ScatterElements, Expand, Reshape on int64) are lowered to
 * ops it runs, with the CPU lowering's values. Skips (saying why) without a webgpu adapter.
 */
import { Effect } from "effect";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertClose, assertEquals } from "./assert.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { grad } from "../ir/autodiff.ts";
import { decodeOnnx, toOnnx } from "../onnx/lower.ts";
import { execute, type Provider } from "../runtime/execute.ts";
import { graphStage, plan } from "../ir/plan.ts";
import { value } from "../ir/value.ts";
import { deviceTestName, nodesOnCpu, webgpuUnavailable } from "./webgpu_device.ts";

const unavailable = await webgpuUnavailable("webgpu_lowering_test.ts");

/** A cross-entropy with an ignored label and a class remapping, as the segmentation losses build it. */
const lossLike = () => {
  const g = new Graph("lossLike");
  const labels = o.cast(o.input(g, "labels", [2, 5], "int32"), "int64");
  const logits = o.input(g, "logits", [2, 5, 6]);
  const ignored = o.equal(labels, o.constant(g, [4], [], "int64"));
  const safe = o.where(ignored, 0, labels);
  // A per-image table class → position, filled by a scatter, read by a gather (selection's remapping).
  const positions = o.constant(g, [3, 1, 0, 2, 5, 0, 1, 2, 3, 4], [2, 5], "int64");
  const table = o.scatterElements(o.full(g, [2, 6], 5, "int64"), positions, o.cast(safe, "int64"), 1);
  const remapped = o.gatherElements(table, safe, 1);
  g.output("remapped", o.expand(o.reshape(remapped, [1, 10]), [3, 10]));
  const logProbs = o.logSoftmax(logits, -1);
  const picked = g.output("picked", o.gatherElements(logProbs, o.reshape(safe, [2, 5, 1]), 2));
  // The pick's x̄ is a one-hot mask of Equal … Or …: Or runs on the CPU there, its webgpu lowering does not.
  g.output("pickGrad", grad(o.sum(picked), [logProbs])[0]);
  g.output("counts", o.scatterElements(o.zeros(g, [2, 6]), safe, o.full(g, [2, 5], 1), 1, "add"));
  return g;
};

const feeds = {
  labels: value("int32", Int32Array.of(0, 4, 2, 3, 1, 5, 5, 0, 4, 2), [2, 5]),
  logits: value("float32", Float32Array.from({ length: 60 }, (_, i) => 3 * Math.sin(i * 1.7)), [2, 5, 6]),
};

Deno.test("webgpu lowering: no LogSoftmax and no int64 Equal/Where/gathers/scatters/Expand/Reshape remain", () => {
  const ops = (target: "cpu" | "webgpu") => {
    const nodes = decodeOnnx(toOnnx(lossLike(), { target }).bytes).graph!.node!;
    return nodes.map((n) => n.opType!);
  };
  assert(ops("cpu").includes("LogSoftmax"));
  assert(!ops("webgpu").includes("LogSoftmax"));
  assert(ops("cpu").includes("Or"));
  assert(!ops("webgpu").includes("Or"));
  // The CPU lowering adds no casts: the labels' and the one-hot mask's are the graph's own.
  assertEquals(ops("cpu").filter((op) => op === "Cast").length, 2);
});

Deno.test({
  name: deviceTestName(
    "webgpu lowering: every node runs on the device and computes the CPU's values",
    unavailable,
  ),
  ignore: unavailable !== undefined,
  fn: async () => {
    const dir = await mkdtemp(join(tmpdir(), "kappa-webgpu-lowering-"));
    try {
      const run = (provider: Provider) =>
        Effect.runPromise(Effect.scoped(Effect.gen(function* () {
          const g = lossLike();
          const ex = yield* execute(plan("lossLike", g, [graphStage(g)]), {
            provider,
            profilePrefix: join(dir, provider),
          });
          const out = yield* ex.run(feeds);
          return Object.fromEntries(
            [...out].map(([k, v]) => [k, Array.from(v.data as ArrayLike<number>, Number)]),
          );
        })));
      const cpu = await run("cpu"), gpu = await run("webgpu");
      assertEquals(gpu.remapped, cpu.remapped);
      assertEquals(gpu.counts, cpu.counts);
      assertClose(gpu.picked, cpu.picked, { atol: 1e-6, rtol: 1e-6 });
      assertEquals(gpu.pickGrad, cpu.pickGrad);
      // Row 0 position 0 picks class 0 (its label), position 1 class 0 too (label 4 ignored → 0).
      assertEquals(cpu.pickGrad.slice(0, 12), [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
      // Row 0: safe labels [0,0,2,3,1] (label 4 ignored → 0), table [2,0,3,0,5,1]; row 1: [5,5,0,0,2], [5,5,0,0,2,5].
      assertEquals(cpu.remapped.slice(0, 10), [2, 2, 3, 0, 0, 5, 5, 5, 5, 0]);
      assertEquals(Object.fromEntries(nodesOnCpu(join(dir, "webgpu"))), {});
    } finally {
      await rm(dir, { recursive: true });
    }
  },
});
