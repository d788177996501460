/**
 * LarvSeg in the interpreter and the training loop: the per-image inputs of its training graph, its
 * bank as checkpointed state with bitwise resume, and an inference graph (and export) without the bank.
 */
import { Exit } from "effect";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertClose, assertEquals } from "./assert.ts";
import { runGraph } from "./graph_runner.ts";
import { type Experiment, experiment } from "../dsl/experiment.ts";
import * as m from "../dsl/model.ts";
import { adamWSpec, evalConfig, poly, trainConfig } from "../dsl/training.ts";
import { procedural, testPipeline, trainPipeline } from "../dsl/dataset.ts";
import { inferenceGraph, lossGraph, trainingStages } from "../interpret/graphs.ts";
import { sgd } from "../ir/optim.ts";
import {
  ATTENTIVE_LOSS,
  IMAGE_LABELS,
  IMAGE_LEVEL_LOSS,
  lossGraph as segmenterLossGraph,
  PIXEL_LABELLED,
  PIXEL_LOSS,
} from "../interpret/segmenter.ts";
import { Effect } from "effect";
import { exportModel } from "../eval/export_model.ts";
import { exportedModel } from "../kinds/export.ts";
import { plan } from "../ir/plan.ts";
import { execute } from "../runtime/execute.ts";
import { value } from "../ir/value.ts";
import { random } from "../core/random.ts";
import { proceduralNames } from "../data/procedural.ts";
import { finalState, run } from "./run_helpers.ts";
import { deviceTestName, webgpuUnavailable } from "./webgpu_device.ts";

const unavailable = await webgpuUnavailable("larvseg_train_test.ts");

const K = 8;
const model = (o: Partial<m.Segmenter> = {}) =>
  m.larvSegmenter({
    classes: K,
    backbone: m.vit({ dim: 16, depth: 1, heads: 2, patchSize: 8 }),
    attentiveClassifier: m.attentiveClassifier({ slots: 2, pixels: 4, labelsPerImage: 4 }),
    ...o,
  });

/** A tiny LarvSeg run on synthetic data: class 3's masks hidden, image-level labels of each crop. */
const larvSegExperiment = (): Experiment =>
  experiment({
    name: "tiny-larvseg",
    model: model(),
    data: {
      dataset: procedural({
        numClasses: K,
        height: 40,
        width: 40,
        count: 24,
        classesPerImage: 3,
        seed: 1,
        hidden: [proceduralNames(K)[3]],
        imageLabels: "crop",
      }),
      train: trainPipeline({ scale: [40, 40], ratioRange: [0.8, 1.2], cropSize: [32, 32] }),
      test: testPipeline(),
    },
    train: trainConfig({
      steps: 8,
      batchSize: 4,
      optimizer: adamWSpec({ lr: 3e-3 }),
      schedule: poly({ warmupSteps: 2 }),
      logEvery: 2,
      checkpointEvery: 4,
      keepCheckpoints: 3,
    }),
    eval: evalConfig({ examples: 0 }),
  });

const BANK = "model.attentive.bank",
  POINTER = "model.attentive.bankPointer",
  FILL = "model.attentive.bankFill";

Deno.test("LarvSeg training plan: image-level inputs, loss terms, the bank as host-stage state", () => {
  const shapes = { batch: 2, height: 32, width: 32, trainSize: [32, 32] as const };
  const { graph, bank } = segmenterLossGraph(model(), shapes);
  for (const name of [IMAGE_LABELS, PIXEL_LABELLED]) assert(graph.lookup(name), name);
  for (const name of [PIXEL_LOSS, IMAGE_LEVEL_LOSS, ATTENTIVE_LOSS]) assert(graph.outputs.has(name), name);
  // The bank is the read stage's state, outside the graph: per step the graph gets the pairs' class
  // means and returns the new rows (P = 4 pairs, Kp = 4 pixels, d = 16), never the bank.
  assertEquals(
    bank!.read.state!.map((s) => [s.name, s.shape]),
    [[BANK, [K, 2, 4, 16]], [POINTER, [K]], [FILL, [K]]],
  );
  for (const name of [BANK, POINTER, FILL]) {
    assert(!graph.lookup(name) && !graph.outputs.has(`next:${name}`), name);
  }
  assertEquals(graph.lookup("model.attentive.centroids")!.shape, [2, 4, 16]);
  assertEquals(graph.outputs.get("model.attentive.rows")!.shape, [2, 4, 4, 16]);
  const { stages } = trainingStages(model(), shapes, { optimizer: sgd({}) });
  assertEquals(stages.map((s) => s.name), ["bank read", "train", "bank write"]);
  assertEquals(
    plan("t", graph, stages).state.filter((s) => s.name.includes("attentive")).map((s) => s.name),
    [BANK, POINTER, FILL],
  );
  // Without LarvSeg's losses the graph takes no image-level inputs (existing runs feed what they did).
  const plain = lossGraph(model({ imageLevelLoss: undefined, attentiveClassifier: undefined }), shapes).graph;
  assert(!plain.lookup(IMAGE_LABELS) && !plain.lookup(BANK));
});

Deno.test("LarvSeg: images with image-level labels only contribute no pixel cross-entropy", async () => {
  const shapes = { batch: 2, height: 16, width: 16, trainSize: [16, 16] as const };
  const { graph } = lossGraph(model({ attentiveClassifier: undefined }), shapes);
  const rng = random(3);
  const feeds = (pixelLabelled: number[]) => ({
    images: value("float32", Float32Array.from({ length: 2 * 3 * 256 }, () => rng.normal()), [2, 3, 16, 16]),
    labels: value("int32", new Int32Array(2 * 256).map((_, i) => i % 3), [2, 16, 16]),
    [IMAGE_LABELS]: value("float32", Float32Array.from([1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), [
      2,
      K,
    ]),
    [PIXEL_LABELLED]: value("float32", Float32Array.from(pixelLabelled), [2]),
  });
  const none = await runGraph(graph, feeds([0, 0]), { seed: 1 });
  assertEquals(none[PIXEL_LOSS], [0]);
  assert(none[IMAGE_LEVEL_LOSS][0] > 0);
  const some = await runGraph(graph, feeds([1, 0]), { seed: 1 });
  assert(some[PIXEL_LOSS][0] > 0);
  assertClose(some["loss"][0], some[PIXEL_LOSS][0] + 0.1 * some[IMAGE_LEVEL_LOSS][0]);
});

Deno.test("LarvSeg train: stop at step 4, resume to 8 = never stopping, bitwise, the bank included", async () => {
  const root = await mkdtemp(join(tmpdir(), "kappa-larvseg-"));
  try {
    const e = larvSegExperiment();
    const straight = join(root, "straight"), resumed = join(root, "resumed");
    assert(Exit.isSuccess(await run(e, { out: straight })));
    const stopped = await run(e, { out: resumed, stopAfter: 4 });
    assert(Exit.isFailure(stopped) && String(stopped.cause).includes("stopped at step 4"), String(stopped));
    assert(Exit.isSuccess(await run(e, { out: resumed, resume: true })));
    const [a, b] = [await finalState(straight), await finalState(resumed)];
    assertEquals(Object.keys(a).sort(), Object.keys(b).sort());
    for (const name of Object.keys(a)) {
      const [x, y] = [a[name].data as Float32Array, b[name].data as Float32Array];
      assert(x.length === y.length && x.every((v, i) => Object.is(v, y[i])), `${name} differs`);
    }
    // The bank was written: 8 steps × 4 images fill every class that occurs (2 slots each).
    const fill = Array.from(a[FILL].data as Float32Array);
    assert(fill.some((f) => f === 2), `fill ${fill}`);
    assert((a[BANK].data as Float32Array).some((v) => v !== 0));
    assert(Array.from(a[POINTER].data as Float32Array).every((p) => p === 0 || p === 1));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

Deno.test("LarvSeg adds no inference cost: the inference graph and the export have no bank", () => {
  const spec = model();
  const g = inferenceGraph(spec, { batch: 1, height: 32, width: 32, trainSize: [32, 32] });
  const variables = g.nodes.flatMap((n) => (n.prim.op === "variable" ? [n.prim.name] : []));
  assert(variables.length > 0 && !variables.some((v) => v.includes("attentive")), variables.join());
  // Exported from a training state that holds the bank: only what inference needs is embedded.
  const { graph, bank } = segmenterLossGraph(spec, { batch: 2, height: 32, width: 32, trainSize: [32, 32] });
  const zeros = (shape: readonly number[]) =>
    value("float32", new Float32Array(shape.reduce((x, y) => x * y, 1)), shape);
  const state = new Map([
    ...graph.nodes.flatMap((n) =>
      n.prim.op === "variable" ? [[n.prim.name, zeros(n.prim.shape)] as const] : []
    ),
    ...bank!.read.state!.map((s) => [s.name, zeros(s.shape)] as const),
  ]);
  assert(state.has(BANK));
  const e = { ...larvSegExperiment(), model: spec };
  const { bytes } = exportModel(e, state, Effect.runSync(exportedModel(e, state)));
  assert(!new TextDecoder("latin1").decode(bytes).includes("attentive"), "the export holds no bank");
});

Deno.test({
  name: deviceTestName(
    "LarvSeg on webgpu: the bank stays host state; stop at 4, resume to 8 = never stopping, bitwise",
    unavailable,
  ),
  ignore: unavailable !== undefined,
  fn: async () => {
    const root = await mkdtemp(join(tmpdir(), "kappa-larvseg-webgpu-"));
    try {
      const e = larvSegExperiment(), provider = "webgpu" as const;
      const straight = join(root, "straight"), resumed = join(root, "resumed");
      assert(Exit.isSuccess(await run(e, { out: straight, provider })));
      const stopped = await run(e, { out: resumed, stopAfter: 4, provider });
      assert(Exit.isFailure(stopped) && String(stopped.cause).includes("stopped at step 4"), String(stopped));
      assert(Exit.isSuccess(await run(e, { out: resumed, resume: true, provider })));
      const [a, b] = [await finalState(straight), await finalState(resumed)];
      for (const name of Object.keys(a)) {
        const [x, y] = [a[name].data as Float32Array, b[name].data as Float32Array];
        assert(x.length === y.length && x.every((v, i) => Object.is(v, y[i])), `${name} differs`);
      }
      assert(Array.from(a[FILL].data as Float32Array).some((f) => f === 2));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },
});

Deno.test("LarvSeg bank: a step reads and writes only the batch's classes' rows, in the same array", async () => {
  // K = 8 classes, P = 4 pairs, M = 2 slots, Kp = 4, d = 16. Image 0 is labelled {1, 3} and image 1 {2}:
  // the pairs are [1, 3, 0, 2] and [2, 0, 1, 3], so classes 0-3 are read and 1, 2, 3 written (slot 0,
  // their pointer); class 0 is padding (read, weighted 0, not written). Classes 4-7 hold NaN: a step that
  // read them would give NaN losses, one that rewrote the bank would change them.
  const shapes = { batch: 2, height: 32, width: 32, trainSize: [32, 32] as const };
  const { graph, stages } = trainingStages(model(), shapes, { optimizer: sgd({}) });
  const per = 2 * 4 * 16, slot = 4 * 16;
  const start = new Float32Array(K * per).map((_, i) => (Math.floor(i / per) >= 4 ? NaN : 0.25));
  const ended = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(plan("bank", graph, stages), { seed: 0, threads: 1 });
    const bank = value("float32", Float32Array.from(start), [K, 2, 4, 16]);
    ex.state.set(BANK, bank);
    const rng = random(2);
    const out = yield* ex.run({
      images: value("float32", Float32Array.from({ length: 2 * 3 * 1024 }, () => rng.normal()), [
        2,
        3,
        32,
        32,
      ]),
      labels: value("int32", new Int32Array(2 * 1024).map((_, i) => (i < 1024 ? 1 + 2 * (i % 2) : 2)), [
        2,
        32,
        32,
      ]),
      lr: value("float32", Float32Array.of(1e-3), []),
      step: value("float32", Float32Array.of(1), []),
      [IMAGE_LABELS]: value("float32", Float32Array.from([0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]), [
        2,
        K,
      ]),
      [PIXEL_LABELLED]: value("float32", Float32Array.of(1, 1), [2]),
    });
    const after = ex.state.get(BANK)!;
    return {
      loss: (out.get("loss")!.data as Float32Array)[0],
      attentive: (out.get(ATTENTIVE_LOSS)!.data as Float32Array)[0],
      same: after === bank && after.data === bank.data,
      data: after.data as Float32Array,
      pointer: Array.from(ex.state.get(POINTER)!.data as Float32Array),
    };
  })));
  assert(Number.isFinite(ended.loss) && Number.isFinite(ended.attentive), `loss ${ended.loss}`);
  assert(ended.same, "the bank was replaced, not updated in place");
  assertEquals(ended.pointer, [0, 1, 1, 1, 0, 0, 0, 0]);
  const changed = (a: number) =>
    Array.from({ length: slot }, (_, j) => a + j).some((i) => !Object.is(ended.data[i], start[i]));
  const touched = Array.from({ length: K * 2 }, (_, r) => r).filter((r) => changed(r * slot));
  // Rows as class · M + slot: classes 1, 2 and 3, slot 0.
  assertEquals(touched, [2, 4, 6]);
});
