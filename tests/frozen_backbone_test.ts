/**
 * The frozen-backbone protocol (`train.frozenBackbone`): the training graph builds no backward under the
 * backbone, a cached step equals the frozen step on the same augmentation draw (within float16 rounding),
 * runs resume bitwise and share one cache across seeds, the run folder alone evaluates, predicts and
 * exports the whole model, and a corrupt or half-built cache is found. Semantic (RankSeg on the
 * pretrained MobileNetV2, LarvSeg) and panoptic models.
 */
import { Effect, Exit, Stream } from "effect";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { cp, mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import * as ort from "onnxruntime-node";
import { assert, assertClose, assertEquals, assertNotEquals } from "./assert.ts";
import { WEIGHTS } from "./fixtures/imagenet_check.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";
import { tinyPanoptic } from "./fixtures/tiny_panoptic.ts";
import { finalState, metrics, quiet } from "./run_helpers.ts";
import * as m from "../dsl/model.ts";
import {
  decodeExperiment,
  type Experiment,
  experiment,
  experimentHash,
  experimentJson,
  type ExperimentOf,
} from "../dsl/experiment.ts";
import {
  imageLevelData,
  imageLevelSources,
  procedural,
  testPipeline,
  trainPipeline,
} from "../dsl/dataset.ts";
import { encodePng, gradient, put } from "./data_fixtures.ts";
import { adamWSpec, evalConfig, frozenBackbone, poly, trainConfig } from "../dsl/training.ts";
import { proceduralNames } from "../data/procedural.ts";
import { openDataset } from "../data/open.ts";
import { runTask } from "../data/sample_task.ts";
import { cachedMixedTrainLoader, drawChoice, openFeatureCache } from "../data/feature_cache.ts";
import { mixedTrainLoader } from "../data/mixed_loader.ts";
import { type ImageLevelSource, readImageLevelLabels } from "../data/image_level.ts";
import { bindKind } from "../kinds/registry.ts";
import { noRuns } from "../kinds/export.ts";
import { inferenceShapes, trainShapes } from "../interpret/shapes.ts";
import { optimizerConfig } from "../interpret/optimizer.ts";
import { pretrainedValues } from "../interpret/pretrained.ts";
import { featureName, variableState } from "../interpret/frozen_backbone.ts";
import { describeTraining } from "../interpret/describe.ts";
import { inferenceGraph, trainingStages } from "../interpret/graphs.ts";
import { graphStage, plan } from "../ir/plan.ts";
import { type Value, value } from "../ir/value.ts";
import { execute } from "../runtime/execute.ts";
import { train, type TrainOptions } from "../train/train.ts";
import { cacheIdentity, cacheKey, ensureFeatureCache } from "../train/feature_cache.ts";
import { loadRun } from "../train/load_run.ts";
import { evaluate } from "../eval/evaluate.ts";
import { makePredictor } from "../eval/predictor.ts";
import { loadCheckpoint } from "../train/checkpoint.ts";
import { cli } from "./cli_runner.ts";

/** A small segmenter on the pretrained MobileNetV2 (to stride 8, the c3 map), 8 synthetic images. */
const pretrained = (draws: number | undefined, o: Partial<Experiment["train"]> = {}): Experiment =>
  experiment({
    name: "frozen-tiny",
    model: m.segmenter({
      classes: 4,
      backbone: m.mobileNetV2({ outputs: ["c3"], pretrained: WEIGHTS }),
      xi: m.gapLinear(),
      psi: m.linearPsi(),
      select: m.topK(2),
      temperature: m.shared(),
      multiLabelLoss: m.asymmetricLoss({ weight: 1 }),
    }),
    data: {
      dataset: procedural({ numClasses: 4, height: 40, width: 40, count: 8, seed: 3 }),
      train: trainPipeline({
        scale: [40, 40],
        ratioRange: [0.8, 1.2],
        cropSize: [32, 32],
        mean: [127.5, 127.5, 127.5],
        std: [127.5, 127.5, 127.5],
      }),
      test: testPipeline({ mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] }),
    },
    train: trainConfig({
      steps: 8,
      batchSize: 2,
      optimizer: adamWSpec({ lr: 1e-3 }),
      schedule: poly({ warmupSteps: 1 }),
      logEvery: 1,
      checkpointEvery: 4,
      keepCheckpoints: 3,
      ...(draws === undefined ? {} : { frozenBackbone: frozenBackbone({ draws }) }),
      ...o,
    }),
    eval: evalConfig({ examples: 0 }),
  });

const withFrozen = (e: Experiment, draws: number): Experiment => ({
  ...e,
  train: { ...e.train, frozenBackbone: frozenBackbone({ draws }) },
});

const withRoot = (name: string, body: (root: string) => Promise<void>) =>
  Deno.test({
    name,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const root = await mkdtemp(join(tmpdir(), "kappa-frozen-"));
      try {
        await body(root);
      } finally {
        await rm(root, { recursive: true, force: true });
      }
    },
  });

const runTrain = async (e: Experiment, options: TrainOptions) => {
  const exit = await Effect.runPromiseExit(train(e, { ...quiet, ...options }));
  assert(Exit.isSuccess(exit), `train failed: ${Exit.isFailure(exit) ? exit.cause : ""}`);
  return exit.value;
};

const backboneBackward = (g: { nodes: readonly { backward: boolean; scope: string }[] }) =>
  g.nodes.filter((n) => n.backward && n.scope.startsWith("model.backbone")).length;

Deno.test("frozen: the training graph builds no backward under model.backbone; its variables are state, not parameters", () => {
  for (const e of [tinyExperiment(), tinyPanoptic()]) {
    const shapes = trainShapes(e), optimizer = optimizerConfig(e.train);
    const trained = trainingStages(e.model, shapes, optimizer, undefined, "trained");
    // Fine-tuning differentiates through the backbone (what freezing removes).
    assert(backboneBackward(trained.graph) > 0, e.name);
    for (const mode of ["frozen", "cached"] as const) {
      const { graph, stages } = trainingStages(e.model, shapes, optimizer, undefined, mode);
      assertEquals(backboneBackward(graph), 0, `${e.name} ${mode}`);
      const p = plan("t", graph, stages);
      const backbone = p.state.filter((s) => s.name.startsWith("model.backbone."));
      // The whole backbone is still the plan's state (checkpointed), without optimizer moments.
      assertEquals(
        backbone.map((s) => s.name).sort(),
        plan("t", trained.graph, trained.stages).state.filter((s) => s.name.startsWith("model.backbone."))
          .map((s) => s.name).sort(),
      );
      assert(!p.state.some((s) => /^adam\.[mv]:model\.backbone\./.test(s.name)), `${e.name} ${mode}`);
      assert(!graph.outputs.has(`next:${backbone[0].name}`), `${e.name} ${mode}`);
      for (const n of graph.nodes) {
        if (n.prim.op === "variable" && n.prim.name.startsWith("model.backbone.")) {
          assert(!n.prim.trainable, n.prim.name);
        }
      }
      if (mode === "cached") {
        // No image input and no backbone node at all: the backbone's outputs are fed.
        assert(!graph.lookup("images") && graph.lookup(featureName(0)), e.name);
        assert(!graph.nodes.some((n) => n.scope.startsWith("model.backbone")), e.name);
        assertEquals(stages[0].name, "frozen backbone");
      }
    }
  }
});

Deno.test("frozen: absent, the spec's JSON and hash are unchanged; present, it is validated with its path", async () => {
  const plain = tinyExperiment();
  assert(!experimentJson(plain).includes("frozenBackbone"));
  const decoded = await Effect.runPromise(decodeExperiment(JSON.parse(experimentJson(plain)), "x.json"));
  assertEquals(experimentHash(decoded), experimentHash(plain));
  const frozen = withFrozen(plain, 4);
  assertNotEquals(experimentHash(frozen), experimentHash(plain));
  assert(experimentJson(frozen).includes(`"frozenBackbone": {\n      "draws": 4\n    }`));
  const bad = await Effect.runPromise(Effect.result(decodeExperiment(withFrozen(plain, -1), "x.json")));
  assert(bad._tag === "Failure");
  assertEquals(bad.failure.violations.map((v) => v.path), ["train.frozenBackbone.draws"]);
  const independent = {
    ...frozen,
    model: { ...plain.model, xi: null, scheme: m.independent("runs/ranker") },
  } as Experiment;
  const refused = await Effect.runPromise(Effect.result(decodeExperiment(independent, "x.json")));
  assert(refused._tag === "Failure");
  assert(
    refused.failure.violations.some((v) =>
      v.path === "train.frozenBackbone.draws" && v.message.includes("the independent scheme's ranker")
    ),
    JSON.stringify(refused.failure.violations),
  );
});

Deno.test("frozen: describe names the frozen parameters and costs a step each way", () => {
  const d = describeTraining(pretrained(8))!;
  // torchvision's features.0..6 (stem + blocks 1..6), BatchNorm folded (as pretrained_test.ts counts them).
  assertEquals(d.frozen, { params: 53_728, draws: 8, scope: "model.backbone" });
  const [trained, frozen, cached] = d.steps;
  assertEquals(d.steps.map((s) => s.mode), ["trained", "frozen", "cached"]);
  assert(trained.gflops > frozen.gflops && frozen.gflops > cached.gflops, JSON.stringify(d.steps));
  assert(describeTraining(pretrained(undefined))!.frozen === undefined);
});

withRoot(
  "frozen: a cached step equals the frozen step on the same draw, within float16 rounding",
  async (root) => {
    const e = pretrained(2);
    const shapes = trainShapes(e), optimizer = optimizerConfig(e.train);
    const training = (await Effect.runPromise(bindKind(e, noRuns))).training!;
    const features = training.features!(shapes);
    const weights = await Effect.runPromise(pretrainedValues(e.model, features));
    const backbone = new Map([...weights].map(([n, v]) => [n, value("float32", v.data, v.shape)] as const));
    const dataset = await Effect.runPromise(openDataset(e.data.dataset, e.data.dataset.trainSplit));
    await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const { cache } = yield* ensureFeatureCache({
        e,
        features,
        backbone,
        dataset,
        panoptic: false,
        root,
        workers: 0,
        print: () => {},
      });
      const draw = 1, picks = [5, 2];
      const source = { spec: e.data.dataset, split: dataset.split, specFile: "x" };
      const samples = yield* Effect.forEach(picks, (index) =>
        runTask(dataset, {
          kind: "draw",
          source,
          pipeline: e.data.train,
          sample: dataset.samples[index],
          draw,
          index,
        }));
      const rows = yield* Effect.forEach(picks, (i) => cache.read(draw, i));
      // The labels stored with the features are the draw's labels, exactly.
      rows.forEach((r, i) => assertEquals(Array.from(r.labels), Array.from(samples[i].labels)));
      const images = new Float32Array(2 * 3 * 32 * 32);
      samples.forEach((s, i) => images.set(s.image, i * 3 * 32 * 32));
      const labels = value("int32", Int32Array.from(rows.flatMap((r) => Array.from(r.labels))), [2, 32, 32]);
      const stepFeeds = {
        lr: value("float32", Float32Array.of(1e-3), []),
        step: value("float32", Float32Array.of(1), []),
      };
      const open = (mode: "frozen" | "cached") =>
        Effect.gen(function* () {
          const { graph, stages } = training.stages(shapes, optimizer, mode);
          const ex = yield* execute(plan("t", graph, stages), { seed: 7 });
          for (const [n, v] of backbone) ex.state.set(n, v);
          return ex;
        });
      const frozenOut = yield* (yield* open("frozen")).run({
        images: value("float32", images, [2, 3, 32, 32]),
        labels,
        ...stepFeeds,
      });
      // The feature graph on the same images: the cache holds exactly these, rounded to float16.
      const fx = yield* execute(plan("f", features, [graphStage(features)]));
      for (const [n, v] of backbone) fx.state.set(n, v);
      const exact = (yield* fx.run({ images: value("float32", images, [2, 3, 32, 32]) })).get(
        featureName(0),
      )!;
      const cached = Float32Array.from(rows.flatMap((r) => Array.from(r.features[0])));
      const exactData = exact.data as Float32Array;
      let worst = 0;
      for (let i = 0; i < cached.length; i++) {
        worst = Math.max(worst, Math.abs(cached[i] - exactData[i]) / (Math.abs(exactData[i]) + 1e-6));
      }
      assert(worst <= 2 ** -11 + 1e-6, `float16 rounding of the features: worst relative error ${worst}`);
      const cachedRun = (f: Float32Array) =>
        Effect.gen(function* () {
          const ex = yield* open("cached");
          return yield* ex.run({ [featureName(0)]: value("float32", f, exact.dims), labels, ...stepFeeds });
        });
      const fromExact = yield* cachedRun(Float32Array.from(exactData));
      const fromCache = yield* cachedRun(cached);
      const scalar = (out: Map<string, Value>, n: string) => out.get(n)!.data[0] as number;
      for (const n of ["loss", "gradNorm"]) {
        // Unrounded features: the same step up to float32 summation order (another graph, other fusions).
        assertClose(scalar(fromExact, n), scalar(frozenOut, n), { rtol: 1e-5, atol: 0, message: n });
        // The cache's float16 features: within float16's unit roundoff, 2^-11 ≈ 4.9e-4, relative (measured on
        // an AMD EPYC with AVX-512: 1.5e-5 for the loss, 3.9e-5 for the gradient norm; 0 from unrounded ones).
        assertClose(scalar(fromCache, n), scalar(frozenOut, n), { rtol: 2 ** -11, atol: 0, message: n });
      }
    })));
  },
);

withRoot(
  "frozen: a cached run resumes bitwise, and a second seed reads the same cache (built once) in another order",
  async (root) => {
    const cacheRoot = join(root, "cache");
    const e = pretrained(3);
    const options = { featureCache: cacheRoot };
    await runTrain(e, { ...options, out: join(root, "straight") });
    const stopped = await Effect.runPromiseExit(
      train(e, { ...quiet, ...options, out: join(root, "stopped"), stopAfter: 4 }),
    );
    assert(Exit.isFailure(stopped) && String(stopped.cause).includes("stopped at step 4"), String(stopped));
    await runTrain(e, { ...options, out: join(root, "stopped"), resume: true });
    assertEquals(metrics(join(root, "stopped")), metrics(join(root, "straight")));
    const [a, b] = [await finalState(join(root, "straight")), await finalState(join(root, "stopped"))];
    assertEquals(Object.keys(a).sort(), Object.keys(b).sort());
    for (const k of Object.keys(a)) assertEquals(a[k].data, b[k].data, k);
    // Another seed: the same cache (one key, one folder), another draw sequence, other numbers.
    await runTrain({ ...e, train: { ...e.train, seed: 1 } }, { ...options, out: join(root, "seed1") });
    const record = (dir: string) => JSON.parse(readFileSync(join(root, dir, "feature-cache.json"), "utf8"));
    assertEquals(record("straight").built, true);
    assertEquals(record("seed1").built, false);
    assertEquals(record("seed1").key, record("straight").key);
    assertEquals(readdirSync(cacheRoot), [record("straight").key]);
    assertNotEquals(metrics(join(root, "seed1")), metrics(join(root, "straight")));
    const draws = (seed: number) => Array.from({ length: 8 }, (_, i) => drawChoice(seed, 0, i, 3));
    assertNotEquals(draws(0), draws(1));
    // The checkpoint holds the whole model: its backbone is the pretrained file's, bitwise.
    const weights = await Effect.runPromise(
      pretrainedValues(e.model, inferenceGraph(e.model, trainShapes(e))),
    );
    for (const [name, v] of weights) assertEquals(a[name].data, v.data, name);
  },
);

withRoot(
  "frozen: eval, predict and export from the run folder alone equal the whole model's inference",
  async (root) => {
    const e = pretrained(2, { steps: 4 });
    const dir = join(root, "run"), spec = join(root, "e.json");
    await writeFile(spec, experimentJson(e));
    const trained = await cli(
      "train",
      spec,
      "--out",
      dir,
      "--workers",
      "0",
      "--feature-cache",
      join(root, "cache"),
    );
    assertEquals(trained.code, 0, trained.stderr);
    // The whole model, put together independently of the checkpoint's backbone: the pretrained file's
    // backbone and the checkpoint's trained head.
    const ckpt = await Effect.runPromise(loadCheckpoint(join(dir, "checkpoints", "step-000004.safetensors")));
    const shapes = inferenceShapes(e, 1);
    const g = inferenceGraph(e.model, shapes);
    const file = await Effect.runPromise(pretrainedValues(e.model, g));
    const whole = new Map<string, Value>();
    for (const s of plan("i", g, [graphStage(g)]).state) {
      const v = file.get(s.name) ?? ckpt.tensors[s.name];
      assert(v, s.name);
      whole.set(s.name, value("float32", v.data as Float32Array, v.shape));
    }
    assert(file.size > 0 && whole.size > file.size);
    const image = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(0.37 * i));
    const reference = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const ex = yield* execute(plan("i", g, [graphStage(g)]));
      for (const [n, v] of whole) ex.state.set(n, v);
      const out = yield* ex.run({ images: value("float32", image, [1, 3, 32, 32]) });
      return {
        logits: Float32Array.from(out.get("logits")!.data as Float32Array),
        classes: out.get("classes")!,
      };
    })));
    // export: the run folder's ONNX file computes the whole model (its backbone came from the checkpoint).
    const onnx = join(root, "model.onnx");
    const exported = await cli("export", dir, onnx);
    assertEquals(exported.code, 0, exported.stderr);
    const session = await ort.InferenceSession.create(onnx);
    const out = await session.run({ images: new ort.Tensor("float32", image, [1, 3, 32, 32]) });
    assertClose(out.logits.data as Float32Array, reference.logits, { atol: 1e-5, rtol: 1e-5 });
    assertEquals(
      Array.from(out.classes.data as BigInt64Array),
      Array.from(reference.classes.data as BigInt64Array),
    );
    // eval: the same numbers as evaluating the whole model.
    const evaluated = await cli("eval", dir);
    assertEquals(evaluated.code, 0, evaluated.stderr);
    const dataset = await Effect.runPromise(openDataset(e.data.dataset, e.data.dataset.testSplit));
    const r = await Effect.runPromise(
      evaluate(e as ExperimentOf<m.Segmenter>, whole, dataset.classes, {
        split: "val",
        mode: "whole",
        workers: 0,
      }),
    );
    assert(evaluated.stdout.includes(`mIoU=${(100 * r.segmentation.mIoU).toFixed(2)}`), evaluated.stdout);
    // predict (its predictor on the run folder's state) equals the whole model's, image for image.
    const loaded = await Effect.runPromise(loadRun(dir));
    const predict = (state: ReadonlyMap<string, Value>) =>
      Effect.runPromise(Effect.scoped(Effect.gen(function* () {
        const p = yield* makePredictor(e.model as m.Segmenter, state, { mode: "whole", trainSize: [32, 32] });
        return yield* p.predict(image, 32, 32, [32, 32]);
      })));
    const [mine, theirs] = [await predict(loaded.state), await predict(whole)];
    assertEquals(Array.from(mine.classes), Array.from(theirs.classes));
    assertEquals(mine.selected, theirs.selected);
  },
);

withRoot(
  "frozen: a truncated or edited cache file is found and named; the run rebuilds the cache and says so",
  async (root) => {
    const e = pretrained(1, { steps: 2 });
    const cacheRoot = join(root, "cache");
    await runTrain(e, { featureCache: cacheRoot, out: join(root, "a") });
    const [key] = readdirSync(cacheRoot);
    const dir = join(cacheRoot, key), shard = join(dir, "draw-0000-0000.safetensors");
    const open = () => Effect.runPromise(Effect.result(Effect.scoped(openFeatureCache(dir))));
    assert((await open())._tag === "Success");
    // One byte changed inside the float16 rows: same size, valid header, another SHA-256.
    const bytes = readFileSync(shard);
    bytes[bytes.length - 5000] ^= 0x40;
    await writeFile(shard, bytes);
    const edited = await open();
    assert(edited._tag === "Failure");
    assertEquals(edited.failure.message, `${shard}: its SHA-256 differs from the manifest's (corrupt)`);
    await truncate(shard, 1000);
    const cut = await open();
    assert(cut._tag === "Failure");
    assert(
      cut.failure.message.startsWith(`${shard}: is 1000 bytes, the manifest says `),
      cut.failure.message,
    );
    // A training run finds it, says so in one line, and builds the cache again under the same key.
    const said: string[] = [];
    await runTrain(e, { featureCache: cacheRoot, out: join(root, "b"), print: (l) => said.push(l) });
    const rebuilt = said.filter((l) => l.includes("building the cache again"));
    assertEquals(rebuilt.length, 1, said.join("\n"));
    assert(rebuilt[0].startsWith(`${shard}: is 1000 bytes`), rebuilt[0]);
    assert((await open())._tag === "Success");
    assertEquals(metrics(join(root, "b")), metrics(join(root, "a")));
    // A build that died (a partial folder, no manifest) is never read as a cache.
    await rm(join(dir, "manifest.json"));
    const partial = await open();
    assert(partial._tag === "Failure" && partial.failure.message.includes("a cache that was never finished"));
  },
);

withRoot("frozen: two runs that need the same cache at once build it once", async (root) => {
  const e = pretrained(2, { steps: 1 });
  const cacheRoot = join(root, "cache");
  const said: string[] = [];
  await Promise.all(
    ["a", "b"].map((d) =>
      runTrain(e, { featureCache: cacheRoot, out: join(root, d), print: (l) => said.push(l) })
    ),
  );
  assertEquals(said.filter((l) => l.startsWith("feature cache: building")).length, 1, said.join("\n"));
  assertEquals(readdirSync(cacheRoot).length, 1, readdirSync(cacheRoot).join(", "));
  const built = ["a", "b"].map((d) =>
    JSON.parse(readFileSync(join(root, d, "feature-cache.json"), "utf8")).built
  );
  assertEquals(built.sort(), [false, true]);
  assertEquals(metrics(join(root, "a")), metrics(join(root, "b")));
});

withRoot(
  "frozen: a panoptic model trains its pixel decoder and heads on cached multi-scale maps, and resumes bitwise",
  async (root) => {
    const e = withFrozen(tinyPanoptic({ steps: 2, checkpointEvery: 1 }), 1);
    const dir = join(root, "run");
    await runTrain(e, { featureCache: join(root, "cache"), out: dir, evalLimit: 1 });
    const cacheDir = JSON.parse(readFileSync(join(dir, "feature-cache.json"), "utf8")).dir;
    const manifest = JSON.parse(readFileSync(join(cacheDir, "manifest.json"), "utf8"));
    // The ConvNet's three stages at strides 2, 4, 8 on 64×64 crops: the pixel decoder reads strides 4 and 8.
    assertEquals(manifest.layout.features, [
      { name: "features.0", shape: [16, 16, 16] },
      { name: "features.1", shape: [16, 8, 8] },
    ]);
    assertEquals(manifest.layout.panoptic, true);
    for (const l of metrics(dir)) assert(Number.isFinite(l.loss), JSON.stringify(l));
    const state = await finalState(dir);
    const initial = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const { graph, stages } = trainingStages(
        e.model,
        trainShapes(e),
        optimizerConfig(e.train),
        undefined,
        "cached",
      );
      return (yield* execute(plan("t", graph, stages), { seed: e.train.seed })).state;
    })));
    // The backbone is the seed's initialization still (frozen), the heads moved.
    const backbone = variableState(trainingStages(e.model, trainShapes(e), optimizerConfig(e.train)).graph)
      .map((v) => v.name).filter((n) => n.startsWith("model.backbone."));
    assert(backbone.length > 0);
    for (const n of backbone) assertEquals(state[n].data, initial.get(n)!.data, n);
    assertNotEquals(state["model.classHead.weight"].data, initial.get("model.classHead.weight")!.data);
    // Stopped after step 1 and resumed: the same numbers and state as the run that never stopped.
    const resumed = join(root, "resumed");
    const options = { featureCache: join(root, "cache"), out: resumed };
    const stopped = await Effect.runPromiseExit(train(e, { ...quiet, ...options, stopAfter: 1 }));
    assert(Exit.isFailure(stopped) && String(stopped.cause).includes("stopped at step 1"), String(stopped));
    await runTrain(e, { ...options, resume: true });
    assertEquals(metrics(resumed), metrics(dir));
    const again = await finalState(resumed);
    for (const k of Object.keys(state)) assertEquals(again[k].data, state[k].data, k);
  },
);

withRoot(
  "frozen: LarvSeg trains on cached features with the image-level labels of each draw's crop",
  async (root) => {
    const K = 8;
    const e: Experiment = experiment({
      name: "frozen-larvseg",
      model: m.larvSegmenter({
        classes: K,
        backbone: m.vit({ dim: 16, depth: 1, heads: 2, patchSize: 8 }),
        attentiveClassifier: m.attentiveClassifier({ slots: 2, pixels: 4, labelsPerImage: 4 }),
      }),
      data: {
        dataset: procedural({
          numClasses: K,
          height: 40,
          width: 40,
          count: 8,
          classesPerImage: 3,
          seed: 1,
          hidden: [proceduralNames(K)[3]],
          imageLabels: "crop",
        }),
        train: trainPipeline({ scale: [40, 40], ratioRange: [0.8, 1.2], cropSize: [32, 32] }),
        test: testPipeline(),
      },
      train: trainConfig({
        steps: 4,
        batchSize: 2,
        optimizer: adamWSpec({ lr: 3e-3 }),
        logEvery: 1,
        checkpointEvery: 2,
        frozenBackbone: frozenBackbone({ draws: 2 }),
      }),
      eval: evalConfig({ examples: 0 }),
    });
    const dir = join(root, "run");
    await runTrain(e, { featureCache: join(root, "cache"), out: dir });
    const lines = metrics(dir);
    assertEquals(lines.length, 4);
    for (const l of lines) {
      assert(Number.isFinite(l.terms.imageLevel) && Number.isFinite(l.terms.attentive), JSON.stringify(l));
    }
    const cacheDir = JSON.parse(readFileSync(join(dir, "feature-cache.json"), "utf8")).dir;
    assert(existsSync(cacheDir));
    const dataset = await Effect.runPromise(openDataset(e.data.dataset, e.data.dataset.trainSplit));
    const { layout, row, sample } = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const c = yield* openFeatureCache(cacheDir);
      const sample = yield* runTask(dataset, {
        kind: "draw",
        source: { spec: e.data.dataset, split: dataset.split, specFile: "x" },
        pipeline: e.data.train,
        sample: dataset.samples[3],
        draw: 1,
        index: 3,
      });
      return { layout: c.manifest.layout, row: yield* c.read(1, 3), sample };
    })));
    assertEquals(layout.imageLabels, K);
    // The row holds the draw's crop labels (hidden class ignored) and the crop's image-level labels, exactly.
    assertEquals(Array.from(row.imageLabels!), Array.from(sample.imageLabels!));
    assertEquals(Array.from(row.labels), Array.from(sample.labels));
  },
);

/** Five 20×20 tag photos and their labels.json (an image-level source of 4 classes). */
const TAGS: Record<string, number[]> = {
  "p0.png": [0, 1],
  "p1.png": [2],
  "p2.png": [1, 3],
  "p3.png": [0, 2, 3],
  "p4.png": [3],
};
const writeTags = async (root: string): Promise<string> => {
  let seed = 10;
  for (const name of Object.keys(TAGS)) {
    await put(join(root, "tags", "images", name), encodePng(20, 20, "rgb8", gradient(20, 20, seed++)));
  }
  return await put(join(root, "tags", "labels.json"), JSON.stringify({ images: "images", labels: TAGS }));
};

const mixedLarvSeg = (labels: string, draws: number | undefined): Experiment =>
  experiment({
    name: "frozen-larvseg-mixed",
    model: m.larvSegmenter({
      classes: 4,
      backbone: m.vit({ dim: 16, depth: 1, heads: 2, patchSize: 8 }),
      attentiveClassifier: m.attentiveClassifier({ slots: 2, pixels: 2, labelsPerImage: 3 }),
    }),
    data: {
      dataset: procedural({
        numClasses: 4,
        height: 16,
        width: 16,
        count: 6,
        seed: 2,
        hidden: [proceduralNames(4)[3]],
        imageLabels: "image",
      }),
      train: trainPipeline({ scale: [16, 16], ratioRange: [0.8, 1.2], cropSize: [16, 16] }),
      test: testPipeline(),
      imageLevel: imageLevelData({ labels, ratio: 0.5 }),
    },
    train: trainConfig({
      steps: 6,
      batchSize: 4,
      optimizer: adamWSpec({ lr: 3e-3 }),
      logEvery: 1,
      checkpointEvery: 3,
      ...(draws === undefined ? {} : { frozenBackbone: frozenBackbone({ draws }) }),
    }),
    eval: evalConfig({ examples: 0 }),
  });

withRoot(
  "frozen: LarvSeg with an image-level source reads two caches in the mixed loader's order and resumes bitwise",
  async (root) => {
    const labels = await writeTags(root);
    const e = mixedLarvSeg(labels, 2);
    const cacheRoot = join(root, "cache");
    const straight = join(root, "straight"), resumed = join(root, "resumed");
    await runTrain(e, { featureCache: cacheRoot, out: straight });
    const stopped = await Effect.runPromiseExit(
      train(e, { ...quiet, featureCache: cacheRoot, out: resumed, stopAfter: 3 }),
    );
    assert(Exit.isFailure(stopped) && String(stopped.cause).includes("stopped at step 3"), String(stopped));
    await runTrain(e, { featureCache: cacheRoot, out: resumed, resume: true });
    assertEquals(metrics(resumed), metrics(straight));
    const [a, b] = [await finalState(straight), await finalState(resumed)];
    for (const k of Object.keys(a)) assertEquals(a[k].data, b[k].data, k);
    for (const l of metrics(straight)) assert(l.terms.imageLevel > 0, JSON.stringify(l));
    // Two caches, one per source of rows, under two keys: the split's 6 images and the source's 5.
    const record = JSON.parse(readFileSync(join(straight, "feature-cache.json"), "utf8"));
    assertEquals([record.samples, record.imageLevel.samples, record.imageLevel.draws], [6, 5, 2]);
    assertNotEquals(record.key, record.imageLevel.key);
    assertEquals(readdirSync(cacheRoot).sort(), [record.key, record.imageLevel.key].sort());
    const dataset = await Effect.runPromise(openDataset(e.data.dataset, e.data.dataset.trainSplit));
    const source = await Effect.runPromise(readImageLevelLabels(labels, 4));
    await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const pixels = yield* openFeatureCache(record.dir);
      const images = yield* openFeatureCache(record.imageLevel.dir);
      assertEquals(images.manifest.ids, ["p0", "p1", "p2", "p3", "p4"]);
      // An image-level row: every label ignored, its tags as image-level labels; its draw is the pipeline
      // under imageLevelDrawRandom, exactly.
      const drawn = yield* runTask(dataset, {
        kind: "imageLevelDraw",
        source: { spec: e.data.dataset, split: dataset.split, specFile: "x" },
        pipeline: e.data.train,
        sample: source.samples[3],
        draw: 1,
        index: 3,
      });
      const row = yield* images.read(1, 3);
      assertEquals(Array.from(row.imageLabels!), [1, 0, 1, 1]);
      assertEquals(Array.from(row.labels), Array.from(drawn.labels));
      assert(row.labels.every((l) => l === dataset.classes.ignoreIndex));
      // The cached batches hold the mixed image loader's samples, batch for batch: 2 + 2, same order.
      const cachedIds = Array.from(
        yield* Stream.runCollect(
          cachedMixedTrainLoader(pixels, [images], {
            batchSize: 4,
            seed: 0,
            sources: imageLevelSources(e.data.imageLevel),
            prefetch: 0,
          }).pipe(
            Stream.take(5),
          ),
        ),
        (batch) => [batch.ids, Array.from(batch.pixelLabelled!)],
      );
      const imageIds = Array.from(
        yield* Stream.runCollect(
          mixedTrainLoader(e.data.dataset, e.data.train, e.data.imageLevel!, {
            batchSize: 4,
            seed: 0,
            workers: 0,
            prefetch: 0,
          }).pipe(Stream.take(5)),
        ),
        (batch) => [batch.ids, Array.from(batch.pixelLabelled!)],
      );
      assertEquals(cachedIds, imageIds);
      assertEquals(cachedIds[0][1], [1, 1, 0, 0]);
    })));
    // Another seed of this ViT without pretrained weights starts from another initialization of the
    // backbone: its weights digest, and with it both keys, differ (a pretrained backbone's caches are
    // shared across seeds: the resume test above).
    await runTrain({ ...e, train: { ...e.train, seed: 1 } }, {
      featureCache: cacheRoot,
      out: join(root, "s1"),
    });
    const again = JSON.parse(readFileSync(join(root, "s1", "feature-cache.json"), "utf8"));
    assertEquals([again.built, again.imageLevel.built], [true, true]);
    assertEquals(readdirSync(cacheRoot).length, 4);
  },
);

withRoot(
  "frozen: two image-level sources (one partial) read three caches as the mixed loader reads the images: rows, pixelLabelled, imageLabelsKnown",
  async (root) => {
    const labels = await writeTags(root);
    // The same tags once more under another file: a second source, read as partial.
    const partial = await put(join(root, "tags", "partial.json"), readFileSync(labels, "utf8"));
    const base = mixedLarvSeg(labels, 2);
    const sources = [
      imageLevelData({ labels, ratio: 0.25 }),
      imageLevelData({ labels: partial, ratio: 0.25, semantics: "partial" }),
    ];
    const e: Experiment = { ...base, data: { ...base.data, imageLevel: sources } };
    const cacheRoot = join(root, "cache");
    const out = join(root, "run");
    await runTrain(e, { featureCache: cacheRoot, out });
    const record = JSON.parse(readFileSync(join(out, "feature-cache.json"), "utf8"));
    assertEquals(record.imageLevel.length, 2);
    await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const pixels = yield* openFeatureCache(record.dir);
      const caches = [
        yield* openFeatureCache(record.imageLevel[0].dir),
        yield* openFeatureCache(record.imageLevel[1].dir),
      ];
      const view = (
        b: {
          ids: readonly string[];
          pixelLabelled?: Uint8Array;
          imageLabelsKnown?: Uint8Array;
          imageLabels?: Uint8Array;
        },
      ) => [
        b.ids,
        Array.from(b.pixelLabelled!),
        Array.from(b.imageLabelsKnown!),
        Array.from(b.imageLabels!),
      ];
      const cached = Array.from(
        yield* Stream.runCollect(
          cachedMixedTrainLoader(pixels, caches, {
            batchSize: 4,
            seed: 0,
            sources,
            prefetch: 0,
            start: { epoch: 1, index: 2 },
          })
            .pipe(Stream.take(4)),
        ),
        view,
      );
      const images = Array.from(
        yield* Stream.runCollect(
          mixedTrainLoader(e.data.dataset, e.data.train, sources, {
            batchSize: 4,
            seed: 0,
            workers: 0,
            prefetch: 0,
            start: { epoch: 1, index: 2 },
          }).pipe(Stream.take(4)),
        ),
        view,
      );
      assertEquals(cached, images);
      // 2 pixel-labelled + 1 + 1: the partial source's row is known only at its listed classes.
      const [, pixelLabelled, known, tags] = cached[0] as number[][];
      assertEquals(pixelLabelled, [1, 1, 0, 0]);
      assertEquals(known.slice(0, 12), Array(12).fill(1));
      assertEquals(known.slice(12), tags.slice(12));
    })));
  },
);

Deno.test("frozen: the cache key changes with the backbone spec, its weights, the pipeline, the draws and the images", async () => {
  const e = pretrained(2);
  const shapes = trainShapes(e);
  const training = (await Effect.runPromise(bindKind(e, noRuns))).training!;
  const features = training.features!(shapes);
  const weights = await Effect.runPromise(pretrainedValues(e.model, features));
  const backbone = new Map([...weights].map(([n, v]) => [n, value("float32", v.data, v.shape)] as const));
  const dataset = await Effect.runPromise(openDataset(e.data.dataset, e.data.dataset.trainSplit));
  const base = { e, features, backbone, dataset, panoptic: false };
  const key = (r: Partial<typeof base> & { imageLevel?: ImageLevelSource }) =>
    cacheKey(cacheIdentity({ ...base, ...r }));
  const k0 = key({});
  // Another run, another seed, another head, the same steps: the same cache.
  const head = {
    ...e,
    model: { ...e.model, select: m.topK(3) },
    train: { ...e.train, seed: 5, steps: 99 },
  } as Experiment;
  assertEquals(key({ e: head }), k0);
  const model = e.model as m.Segmenter;
  const nudged = new Map(backbone);
  const [first] = nudged.keys();
  const v = nudged.get(first)!;
  const data = Float32Array.from(v.data as Float32Array);
  data[0] += 1e-6;
  nudged.set(first, value("float32", data, v.dims));
  const others = {
    "backbone spec": key({
      e: {
        ...e,
        model: {
          ...model,
          backbone: m.mobileNetV2({ outputs: ["c3"], pretrained: WEIGHTS, padding: "symmetric" }),
        },
      },
    }),
    "backbone weights": key({ backbone: nudged }),
    pipeline: key({ e: { ...e, data: { ...e.data, train: { ...e.data.train, cropSize: [24, 24] } } } }),
    draws: key({ e: withFrozen(e, 3) }),
    "image-level rows": key({
      imageLevel: { file: "tags.json", classes: 4, samples: [{ id: "a", image: "a.png", classes: [1] }] },
    }),
  };
  for (const [what, k] of Object.entries(others)) assertNotEquals(k, k0, what);
  assertEquals(new Set(Object.values(others)).size, Object.keys(others).length);
});

withRoot(
  "frozen: a cache found under another key's folder is mismatched, said in one line, and built again",
  async (root) => {
    const cacheRoot = join(root, "cache");
    const a = pretrained(1, { steps: 1 });
    await runTrain(a, { featureCache: cacheRoot, out: join(root, "a") });
    const [keyA] = readdirSync(cacheRoot);
    // Another crop is another key; put A's cache where that key's would be.
    const b = { ...a, data: { ...a.data, train: { ...a.data.train, cropSize: [24, 24] } } } as Experiment;
    const said: string[] = [];
    await runTrain(b, { featureCache: cacheRoot, out: join(root, "b0") });
    const keyB = readdirSync(cacheRoot).find((k) => k !== keyA && !k.includes("."))!;
    assert(keyB !== undefined, readdirSync(cacheRoot).join(", "));
    await rm(join(cacheRoot, keyB), { recursive: true });
    await cp(join(cacheRoot, keyA), join(cacheRoot, keyB), { recursive: true });
    const open = await Effect.runPromise(
      Effect.result(Effect.scoped(openFeatureCache(join(cacheRoot, keyB)))),
    );
    assert(open._tag === "Success"); // every file is intact: only the key tells it is not B's
    await runTrain(b, { featureCache: cacheRoot, out: join(root, "b"), print: (l) => said.push(l) });
    const line = said.find((l) => l.includes("building the cache again"))!;
    assertEquals(
      line,
      `${
        join(cacheRoot, keyB, "manifest.json")
      }: is the manifest of cache ${keyA}, not of ${keyB} (mismatched); ` +
        `removing ${join(cacheRoot, keyB)} and building the cache again`,
    );
    const manifest = JSON.parse(readFileSync(join(cacheRoot, keyB, "manifest.json"), "utf8"));
    assertEquals([manifest.key, manifest.layout.height, manifest.layout.width], [keyB, 24, 24]);
  },
);
