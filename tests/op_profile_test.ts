/** bench profile's pure pieces: FLOPs of a node from its shapes, and the per-op / per-node profile. */
import { assert, assertEquals } from "./assert.ts";
import { type NodeEvent, nodeFlops, opProfile, renderOpProfile } from "../bench/op_profile.ts";

Deno.test("nodeFlops: matmuls whichever operand is transposed, dense and depthwise convolutions", () => {
  // [4, 196, 128] · [128, 384]: 2 · 4·196·384 · 128.
  assertEquals(nodeFlops("MatMul", [[4, 196, 128], [128, 384]], [[4, 196, 384]]), {
    flops: 2 * 4 * 196 * 384 * 128,
    kind: "matmul",
  });
  // FusedMatMul with a transposed A: [8, 3] ᵀ · [8, 5] = [3, 5], K = 8.
  assertEquals(nodeFlops("FusedMatMul", [[8, 3], [8, 5]], [[3, 5]])?.flops, 2 * 3 * 5 * 8);
  // Gemm with a transposed B: [6, 4] · [7, 4]ᵀ = [6, 7], K = 4.
  assertEquals(nodeFlops("Gemm", [[6, 4], [7, 4], [7]], [[6, 7]])?.flops, 2 * 6 * 7 * 4);
  // 1×1 conv 16 → 96 on [4, 16, 112, 112]: 2 · 4·96·112·112 · 16.
  assertEquals(nodeFlops("Conv", [[4, 16, 112, 112], [96, 16, 1, 1]], [[4, 96, 112, 112]]), {
    flops: 2 * 4 * 96 * 112 * 112 * 16,
    kind: "conv",
  });
  // Depthwise 3×3 on 96 channels: 2 · outputs · 9.
  assertEquals(nodeFlops("Conv", [[4, 96, 112, 112], [96, 1, 3, 3]], [[4, 96, 56, 56]]), {
    flops: 2 * 4 * 96 * 56 * 56 * 9,
    kind: "depthwise",
  });
  // ConvTranspose counts per input element: w [C, O/g, k, k].
  assertEquals(nodeFlops("ConvTranspose", [[1, 8, 4, 4], [8, 2, 3, 3]], [[1, 2, 8, 8]]), {
    flops: 2 * 8 * 4 * 4 * 2 * 9,
    kind: "conv",
  });
  assertEquals(nodeFlops("Add", [[4], [4]], [[4]]), undefined);
});

const node = (name: string, op: string, ts: number, dur: number, shapes?: number[][][]): NodeEvent => ({
  cat: "Node",
  name: `${name}_kernel_time`,
  ts,
  dur,
  args: {
    op_name: op,
    ...(shapes
      ? {
        input_type_shape: shapes[0].map((s) => ({ float: s })),
        output_type_shape: shapes[1].map((s) => ({ float: s })),
      }
      : {}),
  },
});

Deno.test("opProfile: per-node medians over the runs (a preempted run drops out), op types, GFLOP/s", () => {
  const mm: number[][][] = [[[100, 100], [100, 100]], [[100, 100]]]; // 2 MFLOP
  const events: NodeEvent[] = [];
  // A warm-up run (not counted), then three runs: MatMul 1, 1, 9 ms (preempted once) → median 1 ms;
  // Add 3, 2, 4 ms → 3 ms.
  [[50, 50], [1, 3], [1, 2], [9, 4]].forEach(([m, a], i) => {
    const ts = 1000 * i;
    events.push({ cat: "Session", name: "model_run", ts, dur: 900 });
    events.push(node("model/MatMul_1", "MatMul", ts + 10, 1000 * m, mm));
    events.push(node("model/Add_2", "Add", ts + 20, 1000 * a));
  });
  const p = opProfile(events, 3);
  assertEquals(p.runs, 3);
  assertEquals(p.kernelMs, 4);
  assertEquals(p.byOp.map((o) => [o.op, o.nodes, o.ms]), [["Add", 1, 3], ["MatMul", 1, 1]]);
  assertEquals(p.byClass, [{ kind: "matmul", backward: false, nodes: 1, ms: 1, flops: 2e6 }]);
  const md = renderOpProfile(p, 10);
  // 2 MFLOP in 1 ms = 2 GFLOP/s, 20 % of a 10 GFLOP/s peak; Add is 75 % of the kernel time.
  assert(
    md.split("\n").some((l) =>
      l.startsWith("| MatMul, FusedMatMul, Gemm, forward") && l.includes("2.0") && l.includes("20 %")
    ),
  );
  assert(md.split("\n").some((l) => l.startsWith("| Add ") && l.includes("75 %")));
  assert(md.includes("`model/MatMul_1`"));
});

Deno.test("opProfile: at T ≥ 2, kernels that never split their work over the thread pool count as one-thread", () => {
  const pooled = (e: NodeEvent, blocks: number[]): NodeEvent => ({
    ...e,
    args: { ...e.args, thread_scheduling_stats: { main_thread: { block_size: blocks } } },
  });
  const events: NodeEvent[] = [];
  // Two runs: Mul split into blocks (4, 6 ms → 5), Where on the calling thread (10, 12 ms → 11).
  [[4, 10], [6, 12]].forEach(([m, w], i) => {
    const ts = 1000 * i;
    events.push({ cat: "Session", name: "model_run", ts, dur: 900 });
    events.push(pooled(node("backward:loss/Mul_3", "Mul", ts + 10, 1000 * m), [32768]));
    events.push(pooled(node("backward:loss/Where_4", "Where", ts + 20, 1000 * w), []));
  });
  const p = opProfile(events, 2);
  assertEquals(p.oneThreadMs, 11);
  assertEquals(p.byOp.map((o) => [o.op, o.ms, o.oneThreadMs]), [["Where", 11, 11], ["Mul", 5, 0]]);
  assertEquals(p.nodes.map((n) => [n.op, n.parallel]), [["Where", false], ["Mul", true]]);
  const md = renderOpProfile(p, 10);
  assert(md.split("\n").some((l) => l.startsWith("| Where ") && l.endsWith("100 % |")));
  assert(md.includes("11.0 ms, 69 % of the kernel time"));
  // At T = 1 ORT records no scheduling stats: no one-thread column.
  const single = opProfile(events.map((e) => ({ ...e, args: { op_name: e.args?.op_name } })), 2);
  assertEquals(single.oneThreadMs, undefined);
  assert(!renderOpProfile(single, 10).includes("on one thread"));
});
