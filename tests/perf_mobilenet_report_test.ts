/** `bench perf --model=mobilenet`'s pure pieces: the FLOP split of a graph and the section's rows. */
import { assert, assertEquals } from "./assert.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { flopSplit } from "../bench/mobilenet_model.ts";
import {
  bestMobileNetSide,
  mobileNetEqualWork,
  type MobileNetFigures,
  renderMobileNet,
} from "../bench/perf_mobilenet_report.ts";
import { SIDES } from "../bench/peers.ts";
import type { Summary } from "../figures/stats.ts";

Deno.test("flopSplit: matmuls, dense and depthwise convolutions, the rest", () => {
  const g = new Graph("split");
  const x = o.input(g, "x", [1, 4, 5, 5]);
  // Dense 1×1 conv 4 → 6 channels: 2 · (6·5·5 outputs) · 4 inputs = 1200.
  const dense = o.conv(x, o.input(g, "w1", [6, 4, 1, 1]));
  // Depthwise 3×3 (group 6), pads 1: 2 · (6·5·5) · 1 · 9 = 2700.
  const dw = o.conv(dense, o.input(g, "w2", [6, 1, 3, 3]), { pads: [1, 1, 1, 1], group: 6 });
  // Relu: one per element, 150.
  const r = o.relu(dw);
  // [1, 6, 25] reshaped, matmul with [25, 2]: 2 · 6 · 25 · 2 = 600.
  g.output("y", o.matmul(o.reshape(r, [6, 25]), o.input(g, "w3", [25, 2])));
  const s = flopSplit(g);
  assertEquals({ matmul: s.matmul, conv: s.conv, depthwise: s.depthwise }, {
    matmul: 600,
    conv: 1200,
    depthwise: 2700,
  });
  assert(s.total >= 600 + 1200 + 2700 + 150, `total ${s.total}`);
});

const sum = (median: number): Summary => ({ median, p10: median * 0.9, p90: median * 1.1, runs: 5 });
const side = (name: string) => SIDES.find((s) => s.name === name)!;

const figures = (eagerLosses: number[]): MobileNetFigures => ({
  command: "npx --yes deno@2.9.6 task bench perf --model=mobilenet --rounds=1",
  date: "2026-11-29",
  machine: "test CPU, 2 cores",
  model: {
    description: "a test model.",
    params: 2_499_326,
    batch: 4,
    size: 224,
    step: { total: 16e9, matmul: 4e9, conv: 8e9, depthwise: 2e9 },
    forward: 5.3e9,
    inference: { total: 1.32e9, matmul: 0.3e9, conv: 0.8e9, depthwise: 0.2e9 },
  },
  rounds: 1,
  trainRepeats: { warmup: 3, runs: 5 },
  inferRepeats: { warmup: 5, runs: 20 },
  checkSteps: 2,
  reportSteps: 5,
  ours: [{
    threads: 1,
    peak: 100,
    train: sum(800),
    infer: sum(40),
    losses: [3.5, 2.4, 2.2, 2.1, 1.7],
    load: 1,
  }],
  sides: [
    {
      side: side("eager"),
      version: "PyTorch 2.13.0+cpu",
      firstStepSeconds: 2,
      byThreads: [{
        threads: 1,
        config: "OpenMP default",
        train: sum(1600),
        infer: sum(100),
        losses: eagerLosses,
        load: 1,
      }],
    },
    {
      side: side("compile-bf16"),
      version: "PyTorch 2.13.0+cpu",
      firstStepSeconds: 40,
      byThreads: [{
        threads: 1,
        config: "OpenMP default",
        train: sum(640),
        infer: sum(50),
        losses: [3.6, 2.5],
        load: 1,
      }],
    },
  ],
  missing: [],
  loadNote: "A grid ran beside it.",
});

Deno.test("renderMobileNet: ratios against the best side per precision, MFU, the loss checks", () => {
  // Step 1 agrees to 2.9e-7, step 2 to 4.2e-6; step 5 differs by 5.9e-4 (reported, not checked).
  const f = figures([3.500001, 2.40001, 2.2, 2.1, 1.701]);
  assert(mobileNetEqualWork(f));
  assertEquals(bestMobileNetSide(f, 1, (t) => t.train, "fp32")?.label, "PyTorch 2 eager");
  assertEquals(bestMobileNetSide(f, 1, (t) => t.infer)?.label, "torch.compile, bf16 autocast");
  const md = renderMobileNet(f);
  const line = (start: string) => md.split("\n").find((l) => l.startsWith(start)) ?? "";
  // 800 / 1600 against the float32 side, 800 / 640 against the bf16 one.
  assert(line("| Training step, float32").includes("0.50 (800.0 / 1600.0 ms, PyTorch 2 eager)"));
  assert(
    line("| Training step: ours (float32)").includes("1.25 (800.0 / 640.0 ms, torch.compile, bf16 autocast)"),
  );
  // Inference is judged in its precision class: the float32 eager side (100 ms), not the faster bf16 one.
  assert(line("| Inference, one image").includes("0.40 (40.0 / 100.0 ms, PyTorch 2 eager)"));
  // Goals (ours ÷ best peer ≤ 0.8): 0.50 meets it, 1.25 misses it, 0.40 meets it; MFU has none.
  assert(
    /\|\s+≤ 0\.8\s+\|.*\|\s+met\s+\|$/.test(line("| Training step, float32")),
    line("| Training step, float32"),
  );
  assert(line("| Training step: ours (float32)").endsWith("| **not met** |"));
  assert(line("| Inference, one image").endsWith("|         met |"));
  assert(/\|\s+–\s+\|$/.test(line("| MFU")), line("| MFU"));
  // 16 GFLOP in 800 ms = 20 GFLOP/s, 20 % of the 100 GFLOP/s peak.
  assert(line("| MFU").includes("20 % (20.0 / 100.0 GFLOP/s)"));
  // FLOP shares: depthwise 2 of 16 GFLOP.
  assert(line("| training step").includes("2.00 (13 %)"));
  const eager = line("| PyTorch 2 eager ");
  assert(/\|\s+passed\s+\|/.test(eager) && eager.includes("5.9e-4") && /\|\s+0\.50\s+\|/.test(eager), eager);
  assert(line("| torch.compile, bf16 autocast").includes("not checked (bf16)"));
  assert(
    md.includes(
      "First step of the compiled sides (tracing and compiling): torch.compile, bf16 autocast 40.0 s.",
    ),
  );
  assert(md.includes("A grid ran beside it."));
});

Deno.test("renderMobileNet: a float32 side whose step-2 loss differs fails the check", () => {
  const f = figures([3.500001, 2.41, 2.2, 2.1, 1.7]); // step 2: 4.1e-3 > 1e-4
  assert(!mobileNetEqualWork(f));
  assert(renderMobileNet(f).split("\n").find((l) => l.startsWith("| PyTorch 2 eager "))!.includes("FAILED"));
});

Deno.test("renderMobileNet: the int8-static export's inference against the best bf16 side", () => {
  const f = figures([3.500001, 2.40001, 2.2, 2.1, 1.701]);
  const md = renderMobileNet({ ...f, ours: f.ours.map((o) => ({ ...o, inferInt8: sum(22.5) })) });
  const line = (start: string) => md.split("\n").find((l) => l.startsWith(start)) ?? "";
  // 22.5 / 50 against the one bf16 side (the float32 eager side, at 100 ms, is not in this class).
  assert(
    line("| Inference, one image, reduced precision").includes(
      "0.45 (22.5 / 50.0 ms, torch.compile, bf16 autocast)",
    ),
  );
  // Its own line in the inference table, and its ratio to each peer: 22.5 / 100 and 22.5 / 50.
  assert(line("| kappa (ONNX Runtime), int8-static export").includes("22.5"));
  const inferLine = (start: string) => md.split("\n").filter((l) => l.startsWith(start)).at(-1) ?? "";
  assert(/\|\s+0\.23\s+\|/.test(inferLine("| PyTorch 2 eager ")), inferLine("| PyTorch 2 eager "));
  assert(/\|\s+0\.45\s+\|/.test(inferLine("| torch.compile, bf16 autocast")));
  // Without the measurement, neither the figure nor the column appears.
  assert(!renderMobileNet(f).includes("int8-static"));
});
