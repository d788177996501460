/**
 * `pixelLossDownsample`: the pixel loss at 1/r of the label size (LarvSeg's official r = 2; r = the
 * backbone stride is feature resolution, where nothing is resized), its spec rule, and that specs without
 * it keep their graphs.
 */
import { assertEquals } from "./assert.ts";
import { runGraph } from "./graph_runner.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { value } from "../ir/value.ts";
import * as m from "../dsl/model.ts";
import { experiment, experimentViolations } from "../dsl/experiment.ts";
import { evalConfig, trainConfig } from "../dsl/training.ts";
import { folder, testPipeline, trainPipeline } from "../dsl/dataset.ts";
import { rankSegLosses } from "../interpret/segmenter.ts";
import { printGraph } from "../ir/print.ts";
import { lossGraph } from "../interpret/segmenter.ts";

const backbone = m.vit({ dim: 16, depth: 1, heads: 2, patchSize: 8 });

Deno.test("pixelLossDownsample 2: 2×2 logits against every second label of a 4×4 map, no resize", async () => {
  const spec = m.larvSegmenter({
    classes: 3,
    backbone,
    pixelLossDownsample: 2,
    attentiveClassifier: undefined,
  });
  const g = new Graph("loss");
  // Channel-last logits [1, 2, 2, 3] at "feature resolution": pixels (0,0) (0,1) (1,0) (1,1).
  const logits = o.input(g, "z", [1, 2, 2, 3]);
  const labels = o.cast(o.input(g, "labels", [1, 4, 4], "int32"), "int64");
  g.output("pixel", rankSegLosses(spec, { logitsChannelsLast: logits }, labels).pixel!.loss);
  // The loss reads labels (0,0) = 0, (0,2) = 1, (2,0) = 2 and (2,2) = 255 (ignored); every other label is
  // 2 and must not matter.
  const map = new Int32Array(16).fill(2);
  [map[0], map[2], map[8], map[10]] = [0, 1, 2, 255];
  const out = await runGraph(g, {
    z: value("float32", Float32Array.of(1, 0, 0, 0, 2, 0, 0, 0, 0, 1, 1, 3), [1, 2, 2, 3]),
    labels: value("int32", map, [1, 4, 4]),
  });
  // −log softmax: (0,0) log(e + 2) − 1 = 0.551445, (0,1) log(2 + e²) − 2 = 0.239545, (1,0) log 3 = 1.098612;
  // the mean over the 3 labelled pixels: 0.629867.
  const expected = 0.629867;
  if (Math.abs(out.pixel[0] - expected) > 1e-5) throw new Error(`${out.pixel[0]} vs ${expected}`);
});

Deno.test("pixelLossDownsample must divide the backbone stride; absent, the training graph is unchanged", () => {
  const e = (r?: number) =>
    experiment({
      name: "x",
      model: m.larvSegmenter({
        classes: 3,
        backbone,
        attentiveClassifier: undefined,
        ...(r === undefined ? {} : { pixelLossDownsample: r }),
      }),
      data: {
        dataset: folder({ root: "x", classes: { names: ["a", "b", "c"] }, imageLabels: "image" }),
        train: trainPipeline({ cropSize: [32, 32] }),
        test: testPipeline(),
      },
      train: trainConfig({ steps: 1 }),
      eval: evalConfig(),
    });
  assertEquals(experimentViolations(e(3)).map((v) => v.path), ["model.pixelLossDownsample"]);
  assertEquals(experimentViolations(e(8)), []);
  const shapes = { batch: 2, height: 32, width: 32, trainSize: [32, 32] as const };
  const print = (s: m.Segmenter) => printGraph(lossGraph(s, shapes).graph);
  // r = 1 is the label size: the same graph as a spec without the field.
  assertEquals(print({ ...e(1).model }), print(e().model));
});
