/**
 * Depthwise convolutions on ONNX Runtime's NCHWc kernels: the block-size probe, which convs the lowering
 * sends there, and a conv with a bias trained both ways (NCHWc and ORT's generic grouped Conv) to the same
 * values. conv_test.ts checks the NCHWc path against the looped definition.
 */
import { Effect } from "effect";
import { assert, assertClose, assertEquals } from "./assert.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { grad } from "../ir/autodiff.ts";
import { uniform } from "../ir/init.ts";
import { value } from "../ir/value.ts";
import { graphStage, plan } from "../ir/plan.ts";
import type { HostArray } from "../ir/dtype.ts";
import { decodeOnnx, toOnnx } from "../onnx/lower.ts";
import { blockOfProbe, PROBE_CHANNELS, probeInput } from "../onnx/nchwc.ts";
import { NCHWC_DOMAIN } from "../ir/primitives.ts";
import { execute } from "../runtime/execute.ts";
import { nchwcBlockSize } from "../runtime/nchwc.ts";

/** The probe's input in NCHWc blocks of `block` channels: [c / block][1][2][block]. */
const blocked = (block: number) => {
  const x = probeInput(), out = new Float32Array(x.length);
  for (let c = 0; c < PROBE_CHANNELS; c++) {
    for (let j = 0; j < 2; j++) out[(Math.floor(c / block) * 2 + j) * block + (c % block)] = x[c * 2 + j];
  }
  return out;
};

Deno.test("nchwc: the probe reads the block size off a blocked layout, and nothing off any other", () => {
  assertEquals(blockOfProbe(blocked(16)), 16);
  assertEquals(blockOfProbe(blocked(8)), 8);
  assertEquals(blockOfProbe(probeInput()), undefined); // NCHW as it was: not blocked
  const wrong = blocked(8);
  wrong[9] = 0;
  assertEquals(blockOfProbe(wrong), undefined);
});

Deno.test("nchwc: this machine's ONNX Runtime has NCHWc kernels on x86 (block 8 or 16)", async () => {
  const block = await nchwcBlockSize();
  if (Deno.build.arch === "x86_64") assert(block === 8 || block === 16, `block ${block}`);
});

/** A depthwise conv (with bias) between two ops, and its gradients. */
const depthwiseGraph = (channels: number, strides: [number, number]) => {
  const g = new Graph("t");
  const x = o.input(g, "x", [2, channels, 9, 8]);
  const w = o.variable(g, "w", [channels, 1, 3, 3], uniform(-1, 1));
  const b = o.variable(g, "b", [channels], uniform(-1, 1));
  const pads = o.samePads([9, 8], [3, 3], strides);
  const y = o.conv(o.mul(x, 1.5), w, { strides, pads, group: channels, bias: b });
  const loss = o.sum(o.mul(y, y));
  const [gx, gw, gb] = grad(loss, [x, w, b]);
  g.output("y", y);
  g.output("gx", gx);
  g.output("gw", gw);
  g.output("gb", gb);
  return g;
};

const nchwcOps = (bytes: Uint8Array) =>
  decodeOnnx(bytes).graph!.node!.filter((n) => n.domain === NCHWC_DOMAIN).map((n) => n.opType);

Deno.test("nchwc: the lowering sends depthwise convs with channels a multiple of the block there, and only on request", () => {
  const g = depthwiseGraph(32, [1, 1]);
  // Forward, x̄ (a depthwise conv with the kernel turned) and w̄ (a depthwise conv over batch × channels
  // with the cotangent planes as kernels): three NCHWc Convs, each with its input and weight reordered in
  // and its output out.
  const each = (
    k: number,
  ): string[] => [
    ...Array(k).fill("Conv"),
    ...Array(2 * k).fill("ReorderInput"),
    ...Array(k).fill("ReorderOutput"),
  ];
  assertEquals(nchwcOps(toOnnx(g, { nchwcBlock: 16 }).bytes).sort(), each(3));
  const model = decodeOnnx(toOnnx(g, { nchwcBlock: 16 }).bytes);
  assertEquals(model.opsetImport!.map((s) => `${s.domain}:${s.version}`), [":21", `${NCHWC_DOMAIN}:1`]);
  // Exports and other providers stay plain ONNX. 24 channels are not a multiple of 16, but w̄'s batch of
  // 2 folded into them, 48, is: only w̄ goes there.
  assertEquals(nchwcOps(toOnnx(g).bytes), []);
  assertEquals(nchwcOps(toOnnx(g, { nchwcBlock: 16, target: "webgpu" }).bytes), []);
  assertEquals(nchwcOps(toOnnx(depthwiseGraph(24, [1, 1]), { nchwcBlock: 16 }).bytes).sort(), each(1));
  assertEquals(nchwcOps(toOnnx(depthwiseGraph(24, [1, 1]), { nchwcBlock: 8 }).bytes).sort(), each(3));
});

const run = (g: Graph, nchwc: boolean, threads: number) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(plan(g.name, g, [graphStage(g)]), { seed: 3, nchwc, threads });
    const n = 2 * 32 * 9 * 8;
    const out = yield* ex.run({
      x: value("float32", Float32Array.from({ length: n }, (_, i) => Math.sin(i)), [2, 32, 9, 8]),
    });
    return Object.fromEntries([...out].map(([k, v]) => [k, Array.from(v.data as HostArray, Number)]));
  })));

Deno.test("nchwc: values and gradients equal ORT's generic grouped Conv's (stride 1 and 2, with bias, T = 1 and 2)", async () => {
  for (const strides of [[1, 1], [2, 2]] as [number, number][]) {
    for (const threads of [1, 2]) {
      const g = depthwiseGraph(32, strides);
      const [blocked, generic] = [await run(g, true, threads), await run(g, false, threads)];
      for (const k of ["y", "gx", "gw", "gb"]) {
        assertClose(blocked[k], generic[k], {
          rtol: 1e-5,
          atol: 1e-4,
          message: `${k}, strides ${strides}, T=${threads}`,
        });
      }
    }
  }
});
