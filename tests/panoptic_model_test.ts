/**
 * The PanopticSegmenter kind: validation with paths, the inference graph unchanged by ReMask/ReClass,
 * the three-stage training plan (cost graph → Hungarian host stage → loss + update) running and
 * learning on a hand-made batch, describe's per-part costs.
 */
import { Effect, Exit } from "effect";
import { assert, assertClose, assertEquals, assertNotEquals } from "./assert.ts";
import { runGraph } from "./graph_runner.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { VOID_PRIOR, withVoidPrior } from "../layers/panoptic.ts";
import {
  convNet,
  mobileNetV2,
  type PanopticSegmenter,
  panopticSegmenter,
  rankSegQueries,
  vitMicro,
} from "../dsl/model.ts";
import { experiment } from "../dsl/experiment.ts";
import { decodeExperiment } from "../dsl/experiment.ts";
import { procedural } from "../dsl/dataset.ts";
import { coco133 } from "../dsl/datasets.ts";
import { testPipeline, trainPipeline } from "../dsl/dataset.ts";
import { evalConfig, trainConfig } from "../dsl/training.ts";
import { panopticViolations } from "../dsl/validate.ts";
import { printGraph } from "../ir/print.ts";
import { execute } from "../runtime/execute.ts";
import { plan } from "../ir/plan.ts";
import { value } from "../ir/value.ts";
import { inferenceGraph, trainingStages } from "../interpret/graphs.ts";
import {
  costGraph,
  LOSS,
  MASK_ID_LOSS,
  MATCHED_INDEX,
  PQ_CLASS_LOSS,
  SEMANTIC_LOSS,
} from "../interpret/panoptic.ts";
import { describeModel } from "../interpret/describe.ts";
import { panopticKind } from "../kinds/panoptic.ts";

const SHAPES = { batch: 2, height: 32, width: 32, trainSize: [32, 32] as const };

const tiny = (o: Partial<PanopticSegmenter> = {}) =>
  panopticSegmenter({
    classes: 3,
    backbone: convNet({ widths: [8, 16, 16] }),
    pixelDecoderDim: 16,
    numMaskSlots: 4,
    queryDim: 16,
    maskEmbeddingDim: 8,
    ...o,
  });

Deno.test("panoptic spec: the task, and validation paths", async () => {
  assertEquals([panopticKind.tag, panopticKind.task], ["PanopticSegmenter", "panoptic"]);
  const paths = (m: PanopticSegmenter) => panopticViolations(m).map((v) => `${v.path}: ${v.message}`);
  assertEquals(paths(tiny()), []);
  assertEquals(paths(tiny({ backbone: vitMicro() })), [
    "model.backbone: a panoptic segmenter needs a multi-scale backbone (convNet or mobileNetV2), not a ViT",
  ]);
  assertEquals(paths(tiny({ backbone: mobileNetV2({ outputs: ["c3", "c5"] }) })), [
    'model.backbone.outputs: must include "c2": the pixel decoder needs the stride-4 map',
  ]);
  assertEquals(paths(tiny({ queryDim: 15, queryClassification: rankSegQueries(4), ignoreIndex: 3 })), [
    "model.queryDim: 15 is not divisible by heads (2)",
    "model.ignoreIndex: 3 is a class id or void (0..3); use a value outside",
    "model.queryClassification.k: 4 exceeds the number of classes (3)",
  ]);
  // Panoptic training on a dataset without segments is refused, naming the field.
  const e = (dataset: typeof coco133) =>
    experiment({
      name: "p",
      model: tiny(),
      data: { dataset, train: trainPipeline({ cropSize: [32, 32] }), test: testPipeline() },
      train: trainConfig({ steps: 1, batchSize: 2 }),
      eval: evalConfig(),
    });
  const bad = await Effect.runPromiseExit(
    decodeExperiment(e(procedural({ numClasses: 3, height: 32, width: 32, count: 4 })), "x.ts"),
  );
  assert(Exit.isFailure(bad));
  assert(
    String(bad.cause).includes(
      "data.dataset: a PanopticSegmenter trains on panoptic segments, which only CocoPanoptic datasets " +
        "have (this one is Procedural)",
    ),
    String(bad.cause),
  );
  const ok = await Effect.runPromiseExit(decodeExperiment(e(coco133), "x.ts"));
  assert(Exit.isSuccess(ok), String(ok));
});

Deno.test("panoptic inference graph: identical with ReMask and ReClass on or off; training differs", () => {
  const base = tiny();
  const remax = tiny({ remask: true, reclass: true });
  assertEquals(printGraph(inferenceGraph(remax, SHAPES)), printGraph(inferenceGraph(base, SHAPES)));
  // The training side does change: ReMask relaxes the mask logits the costs are computed from.
  assertNotEquals(printGraph(costGraph(remax, SHAPES)), printGraph(costGraph(base, SHAPES)));
  for (const crossAttention of ["softmax", "kmeans"] as const) {
    const g = inferenceGraph(tiny({ crossAttention }), SHAPES);
    assertEquals(g.outputs.get("classProbabilities")!.shape, [2, 4, 4]);
    assertEquals(g.outputs.get("maskProbabilities")!.shape, [2, 4, 32, 32]);
  }
});

/**
 * A hand-made batch: image 0 has a thing instance (class 0) in the top-left 16×16 quadrant and stuff
 * (class 2) elsewhere; image 1 has two things of class 1 (left and right halves of the top) and stuff
 * class 2 at the bottom. Images are the mask ids, coloured.
 */
const handBatch = () => {
  const [b, h, w] = [2, 32, 32];
  const m = 4;
  const labels = new Int32Array(b * h * w);
  const maskIds = new BigInt64Array(b * h * w);
  const images = new Float32Array(b * 3 * h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const id0 = y < 16 && x < 16 ? 0 : 1, id1 = y < 16 ? (x < 16 ? 0 : 1) : 2;
      labels[i] = id0 === 0 ? 0 : 2;
      labels[h * w + i] = id1 < 2 ? 1 : 2;
      maskIds[i] = BigInt(id0);
      maskIds[h * w + i] = BigInt(id1);
      for (const [img, id] of [[0, id0], [1, id1]]) {
        for (let c = 0; c < 3; c++) images[(img * 3 + c) * h * w + i] = c === id ? 1 : -1;
      }
    }
  }
  return {
    images: value("float32", images, [b, 3, h, w]),
    labels: value("int32", labels, [b, h, w]),
    maskIds: value("int64", maskIds, [b, h, w]),
    // Padding class K = 3 (void).
    maskClasses: value("int64", BigInt64Array.of(0n, 2n, 3n, 3n, 1n, 1n, 2n, 3n), [b, m]),
    maskCounts: value("int64", BigInt64Array.of(2n, 3n), [b]),
  };
};

Deno.test("panoptic training plan: cost → matching → loss + update runs and learns a hand-made batch", async () => {
  for (
    const spec of [
      tiny(),
      tiny({
        crossAttention: "softmax",
        remask: true,
        reclass: true,
        queryClassification: rankSegQueries(2),
      }),
    ]
  ) {
    const { graph, stages } = trainingStages(spec, SHAPES, {
      optimizer: { _tag: "AdamW", beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 },
    });
    const p = plan("panoptic", graph, stages);
    assertEquals(stages.map((s) => s.name), ["cost", "matching", "train"]);
    assertEquals(p.feeds.map((f) => f.name).sort(), [
      "images",
      "labels",
      "lr",
      "maskClasses",
      "maskIds",
      "step",
    ]);
    const losses = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const ex = yield* execute(p, { seed: 1 });
      const out: number[][] = [];
      for (let step = 1; step <= 30; step++) {
        const r = yield* ex.run({
          ...handBatch(),
          lr: value("float32", Float32Array.of(3e-3), []),
          step: value("float32", Float32Array.of(step), []),
        });
        const index = Array.from(r.get(MATCHED_INDEX)!.data as BigInt64Array, Number);
        // Every real mask is matched to exactly one query (4 queries ≥ 2 and 3 masks).
        assertEquals(index.slice(0, 4).filter((t) => t >= 0).sort(), [0, 1]);
        assertEquals(index.slice(4).filter((t) => t >= 0).sort(), [0, 1, 2]);
        out.push([LOSS, PQ_CLASS_LOSS, MASK_ID_LOSS, SEMANTIC_LOSS].map((n) => r.get(n)!.data[0] as number));
      }
      return out;
    })));
    for (const l of losses) assert(l.every(Number.isFinite), `non-finite loss ${l}`);
    const [first, last] = [losses[0][0], losses[losses.length - 1][0]];
    assert(last < 0.7 * first, `${spec.crossAttention}: loss ${first} → ${last} after 30 steps`);
  }
});

Deno.test("kMaX's void prior: zero class logits → void 0.9, each of K classes 0.1 / K", async () => {
  const g = new Graph("prior");
  const logits = o.input(g, "logits", [1, 2, 4]); // K = 3
  g.output("p", o.softmax(withVoidPrior(logits, VOID_PRIOR), -1));
  const out = await runGraph(g, { logits: value("float32", new Float32Array(8), [1, 2, 4]) });
  // void logit ln(3 · 0.9 / 0.1) = ln 27: 27 / (27 + 3) = 0.9; each class 1 / 30.
  assertClose(out.p, [1 / 30, 1 / 30, 1 / 30, 0.9, 1 / 30, 1 / 30, 1 / 30, 0.9], { rtol: 1e-5 });
});

Deno.test("panoptic training: one step moves every model parameter (kMaX clustering: no dead projections)", async () => {
  // The k-means cross-attention's argmax passes no gradient: a projection that only fed the assignment
  // would never learn. kMaX assigns pixels by the (trained) mask predictions instead; every parameter of
  // the model gets a gradient, so one AdamW step (no weight decay) changes each of them.
  for (const spec of [tiny(), tiny({ crossAttention: "softmax", queryClassification: rankSegQueries(2) })]) {
    const { graph, stages } = trainingStages(spec, SHAPES, {
      optimizer: { _tag: "AdamW", beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 },
    });
    const unchanged = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const ex = yield* execute(plan("panoptic", graph, stages), { seed: 1 });
      const names = [...ex.state.keys()].filter((n) => n.startsWith("model."));
      const before = new Map(names.map((n) => [n, Float32Array.from(ex.state.get(n)!.data as Float32Array)]));
      yield* ex.run({
        ...handBatch(),
        lr: value("float32", Float32Array.of(1e-3), []),
        step: value("float32", Float32Array.of(1), []),
      });
      return names.filter((n) => {
        const after = ex.state.get(n)!.data as Float32Array;
        return before.get(n)!.every((v, i) => v === after[i]);
      });
    })));
    assertEquals(unchanged, [], `${spec.crossAttention}: parameters without gradient`);
  }
});

Deno.test("describe: a panoptic model is costed per part", () => {
  const d = describeModel(tiny(), [32, 32]);
  const names = d.components.map((c) => c.component);
  for (
    const part of [
      "backbone",
      "pixel decoder",
      "transformer decoder (N queries)",
      "class head (K + 1)",
      "mask embeddings · pixel embeddings",
      "total",
    ]
  ) assert(names.includes(part), `${part} missing from ${names}`);
  // The class head: 16 × 4 weights + 4 biases.
  assertEquals(d.components.find((c) => c.component === "class head (K + 1)")!.params, 68);
  // The auxiliary semantic head exists only in training: listed after the total, 16 × 3 + 3 parameters.
  assertEquals(d.components.at(-1), {
    component: "aux. semantic head (training only)",
    params: 51,
    gflops: d.components.at(-1)!.gflops,
  });
  assertEquals(d.components.at(-2)!.component, "total");
});
