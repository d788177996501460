/** The perf benchmark's pure pieces: output agreement, derived ratios, profile attribution. */
import { assert, assertEquals } from "./assert.ts";
import { agreement, dataRatio, type LoaderFigure } from "../bench/perf_report.ts";
import { componentOf, componentsOfTrace } from "../bench/profile.ts";

Deno.test("agreement: pixel share, selection, largest differences", () => {
  const ours = { scores: [0.5, 0.25], selected: [3, 1], logits: [1, 2, 3], classes: [3, 3, 1, 1] };
  const same = agreement(ours, ours);
  assertEquals(same, { classes: 1, selectedEqual: true, scores: 0, logits: 0 });
  const peer = { scores: [0.5, 0.5], selected: [1, 3], logits: [1, 2, 3.5], classes: [3, 1, 1, 1] };
  assertEquals(agreement(ours, peer), { classes: 0.75, selectedEqual: false, scores: 0.25, logits: 0.5 });
  // Outputs of different sizes never agree.
  assertEquals(agreement(ours, { ...peer, logits: [1] }).logits, Infinity);
});

Deno.test("dataRatio: loader images/s over the images/s a step consumes", () => {
  const loader: LoaderFigure = { label: "x", batch: 8, crop: [4, 4], workers: 1, imagesPerSecond: 120 };
  // A 200 ms step of 8 images consumes 40 images/s: the loader is 3× as fast.
  assertEquals(dataRatio(loader, 200), 3);
});

Deno.test("componentOf reads the scope that ONNX node names carry", () => {
  assertEquals(componentOf("model.backbone.blocks.3.attn/MatMul_812"), {
    component: "backbone",
    backward: false,
  });
  assertEquals(componentOf("backward:model.psi.blocks.0.mlp/Mul_9"), { component: "ψ + τ", backward: true });
  assertEquals(componentOf("backward:optimizer/Sub_3"), { component: "optimizer", backward: true });
  assertEquals(componentOf("loss/LogSoftmax_1"), { component: "loss", backward: false });
  assertEquals(componentOf("model.temperature/Exp_2").component, "ψ + τ");
  assertEquals(componentOf("model/TopK_7").component, "other (selection, targets, glue)");
  assertEquals(componentOf("Transpose_token_421").component, "inserted by ONNX Runtime");
});

Deno.test("componentsOfTrace averages kernel time per run, from the first counted run on", () => {
  const kernel = (name: string, ts: number, dur: number) => ({
    cat: "Node",
    name: `${name}_kernel_time`,
    ts,
    dur,
  });
  const events = [
    { cat: "Session", name: "model_run", ts: 0, dur: 100 }, // warm-up: not counted
    kernel("model.backbone/MatMul_1", 10, 5000),
    { cat: "Session", name: "model_run", ts: 1000, dur: 100 },
    kernel("model.backbone/MatMul_1", 1010, 2000),
    kernel("backward:model.backbone/MatMul_2", 1020, 1000),
    { cat: "Session", name: "model_run", ts: 2000, dur: 100 },
    kernel("model.backbone/MatMul_1", 2010, 4000),
    kernel("backward:model.backbone/MatMul_2", 2020, 3000),
    kernel("loss/Exp_3", 2030, 500),
  ];
  const [backbone, loss] = componentsOfTrace(events, 2);
  assertEquals(backbone, { component: "backbone", forwardMs: 3, backwardMs: 2 });
  assertEquals(loss, { component: "loss", forwardMs: 0.25, backwardMs: 0 });
  assert(componentsOfTrace([], 2).length === 0);
});
