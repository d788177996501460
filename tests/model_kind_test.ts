/**
 * A model kind is one record: a fourth kind, defined here and nowhere else, trains, evaluates, predicts
 * and exports through the ordinary entry points — `train`, and the CLI's own `eval`, `predict` and
 * `export` commands run in this process — without a line of train/, eval/ or cli/ knowing it.
 *
 * The toy kind, "ClassShares", predicts each image's share of pixels per class from a pooled linear head
 * (softmax over classes). Its feed (the target shares) is computed from each batch's labels, its loss is
 * the squared error, its headline metric is the mean absolute share error in percent points — lower is
 * better, so best-checkpoint selection must honour the direction — `predict` writes the shares of each
 * image as JSON and `export` outputs `shares`.
 */
import { Effect, Exit, Schema, Scope, Stream } from "effect";
import { Command } from "effect/cli";
import * as NodeServices from "@effect/platform-node/NodeServices";
import * as ort from "onnxruntime-node";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertClose, assertEquals } from "./assert.ts";
import * as k from "../mod.ts";
import { metrics } from "./run_helpers.ts";
import { runGraph } from "./graph_runner.ts";
import { evalCommand } from "../cli/eval.ts";
import { predictCommand } from "../cli/predict.ts";
import { exportCommand } from "../cli/export.ts";
import { readBestRecord } from "../train/checkpoint.ts";

// ---------------------------------------------------------------------------------------------------
// The spec: a schema and its cross-field rule, registered in dsl/'s registry of model kinds.

const ClassShares = Schema.TaggedStruct("ClassShares", {
  classes: Schema.Int.check(Schema.isGreaterThan(0)),
  ignoreIndex: Schema.Int,
  backbone: k.Backbone,
});
type ClassShares = typeof ClassShares.Type;

k.registerModelSchema<ClassShares>({
  tag: "ClassShares",
  schema: ClassShares,
  violations: (m, path) =>
    m.ignoreIndex >= 0 && m.ignoreIndex < m.classes
      ? [{ path: `${path}.ignoreIndex`, message: `${m.ignoreIndex} is a class id (0..${m.classes - 1})` }]
      : [],
});

// ---------------------------------------------------------------------------------------------------
// The graphs: backbone → mean over pixels → linear → softmax over classes.

const SHARES = "shares", TARGETS = "shareTargets", LOSS = "loss";

const sharesOf = (m: ClassShares, images: k.Tensor, shapes: k.Shapes, train: boolean) => {
  const s = k.backboneStride(m.backbone);
  const grid = [shapes.trainSize[0] / s, shapes.trainSize[1] / s] as const;
  return images.graph.scope("model", () => {
    const { tokens } = k.backbone(images, m.backbone, grid, train); // [b, pixels, d]
    return k.ops.softmax(k.linear(k.ops.mean(tokens, [1]), m.classes, { name: "head" }), -1);
  });
};

const imagesOf = (g: k.Graph, s: k.Shapes) => k.ops.input(g, "images", [s.batch, 3, s.height, s.width]);

const inferenceGraph = (m: ClassShares, shapes: k.Shapes) => {
  const g = new k.Graph("inference");
  g.output(SHARES, sharesOf(m, imagesOf(g, shapes), shapes, false));
  return g;
};

const trainingStages = (m: ClassShares, shapes: k.Shapes, optimizer: k.OptimizerConfig) => {
  const g = new k.Graph("train");
  const error = k.ops.sub(
    sharesOf(m, imagesOf(g, shapes), shapes, true),
    k.ops.input(g, TARGETS, [shapes.batch, m.classes]),
  );
  k.minimize(g.output(LOSS, k.ops.mean(k.ops.mul(error, error))), optimizer);
  return { graph: g, stages: [k.graphStage(g, { name: "train" })] };
};

/** Each class's share of an image's labelled pixels (ignored pixels left out). */
const trueShares = (labels: Int32Array, classes: number): number[] => {
  const counts = new Array(classes).fill(0);
  for (const v of labels) if (v >= 0 && v < classes) counts[v]++;
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((c) => (total === 0 ? 0 : c / total));
};

// ---------------------------------------------------------------------------------------------------
// The record: training, evaluation, prediction, export.

interface SharesEvaluation {
  readonly images: number;
  /** Mean absolute share error, in percent points. */
  readonly mae: number;
}

/** One inference session per input size, fed the trained state. */
const sessions = (
  m: ClassShares,
  e: k.ExperimentOf<ClassShares>,
  state: ReadonlyMap<string, k.Value>,
  runtime: k.RuntimeOptions,
) =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope;
    const open = new Map<string, k.Executor>();
    return (image: Float32Array, height: number, width: number) =>
      Effect.gen(function* () {
        const key = `${height}x${width}`;
        let ex = open.get(key);
        if (!ex) {
          const g = inferenceGraph(m, k.inferenceShapes(e, 1, [height, width]));
          ex = yield* k.execute(k.plan(key, g, [k.graphStage(g)]), runtime).pipe(
            Scope.provide(scope),
          );
          for (const name of ex.state.keys()) if (state.has(name)) ex.state.set(name, state.get(name)!);
          open.set(key, ex);
        }
        const out = yield* ex.run({ images: k.value("float32", image, [1, 3, height, width]) });
        return Array.from(out.get(SHARES)!.data as Float32Array);
      });
  });

const classSharesKind: k.ModelKind<ClassShares> = {
  tag: "ClassShares",
  task: "class shares",
  bind: (e) =>
    Effect.succeed({
      kind: classSharesKind as unknown as k.ModelKind,
      experiment: e,
      inferenceGraph: (shapes) => inferenceGraph(e.model, shapes),
      training: {
        checkData: (dataset) => k.checkClasses(e.model, dataset),
        loader: { panoptic: false },
        stages: (shapes, optimizer) => trainingStages(e.model, shapes, optimizer),
        lossNames: () => [LOSS],
        tally: undefined,
        feeds: (batch) => {
          const pixels = batch.height * batch.width;
          const targets = Array.from({ length: batch.batchSize }, (_, i) =>
            trueShares(batch.labels.subarray(i * pixels, (i + 1) * pixels), e.model.classes)).flat();
          return {
            feeds: {
              [TARGETS]: k.value("float32", Float32Array.from(targets), [batch.batchSize, e.model.classes]),
            },
            tally: undefined,
          };
        },
      } satisfies k.Training<undefined> as k.Training<unknown>,
      evaluation: {
        modes: ["whole"],
        oracle: false,
        run: (state, _dataset, request) =>
          Effect.scoped(Effect.gen(function* () {
            const predict = yield* sessions(e.model, e, state, request);
            let stream = k.testLoader(e.data.dataset, e.data.test, {
              split: request.split,
              workers: request.workers,
            });
            if (request.limit !== undefined) {
              stream = stream.pipe(Stream.take(request.limit));
            }
            const errors: number[] = [];
            yield* Stream.runForEach(stream, (batch) =>
              Effect.gen(function* () {
                const got = yield* predict(batch.images, batch.height, batch.width);
                const want = trueShares(batch.original.labels, e.model.classes);
                errors.push(...got.map((p, c) =>
                  Math.abs(p - want[c])
                ));
              }));
            const mae = 100 * errors.reduce((a, b) => a + b, 0) / errors.length;
            return { images: errors.length / e.model.classes, mae } satisfies SharesEvaluation;
          })),
        headline: { name: "MAE", higherIsBetter: false },
        headlineValue: (r) => r.mae,
        images: (r) => r.images,
        metrics: (r) => ({ MAE: r.mae }),
        line: (r) => `MAE ${r.mae.toFixed(2)}`,
        table: (r) => `mean absolute share error over ${r.images} images\nMAE=${r.mae.toFixed(2)}`,
        record: (r, meta) => ({ ...meta, units: "percent", images: r.images, MAE: r.mae }),
        report: false,
      } satisfies k.Evaluation<SharesEvaluation> as k.Evaluation<unknown>,
      prediction: {
        open: (run, out, request) =>
          Effect.gen(function* () {
            const names = (yield* k.openDataset(e.data.dataset, e.data.dataset.testSplit)).classes.names;
            const predict = yield* sessions(e.model, e, run.state, request);
            const [h, w] = k.trainSize(e);
            return {
              predict: (file, stem) =>
                Effect.gen(function* () {
                  const img = yield* k.readRgb(file);
                  const resized = yield* k.resizeRgb(img.data, img.height, img.width, h, w);
                  const shares = yield* predict(
                    k.normalizeRgb(resized, h, w, e.data.test.mean, e.data.test.std),
                    h,
                    w,
                  );
                  const entry = {
                    image: file,
                    shares: Object.fromEntries(names.map((n, c) => [n, shares[c]])),
                  };
                  yield* Effect.promise(() =>
                    writeFile(join(out, `${stem}-shares.json`), JSON.stringify(entry))
                  );
                  return { entry, line: `${file}: ${shares.map((s) => s.toFixed(3)).join(" ")}` };
                }),
              summary: (entries) => ({ name: "shares.json", json: { run: run.dir, images: entries } }),
            };
          }),
      },
      export: {
        open: () =>
          Effect.succeed({
            graph: (shapes) => inferenceGraph(e.model, shapes),
            outputs: [SHARES],
            metadata: { "kappa.outputs": "shares [batch, K]: each class's share of the image's pixels" },
          }),
      },
    }),
};
k.registerKind(classSharesKind);

// ---------------------------------------------------------------------------------------------------

const toyExperiment = (o: Partial<k.TrainConfig> = {}) =>
  k.experiment({
    name: "class-shares",
    model: { _tag: "ClassShares", classes: 4, ignoreIndex: 255, backbone: k.convNet({ widths: [8, 16] }) },
    data: {
      dataset: k.procedural({ numClasses: 4, height: 40, width: 40, count: 16, classesPerImage: 2, seed: 3 }),
      train: k.trainPipeline({ scale: [40, 40], ratioRange: [0.8, 1.2], cropSize: [32, 32] }),
      test: k.testPipeline(),
    },
    train: k.trainConfig({
      steps: 6,
      batchSize: 4,
      optimizer: k.adamWSpec({ lr: 2e-2 }),
      logEvery: 1,
      checkpointEvery: 2,
      evalEvery: 2,
      keepCheckpoints: 10,
      ...o,
    }),
    eval: k.evalConfig({ examples: 0 }),
  });

/** The CLI's commands, run in this process as `deno task <name> …args` runs them. */
const cli = {
  eval: Command.runWith(evalCommand, { version: "test" }),
  predict: Command.runWith(predictCommand, { version: "test" }),
  export: Command.runWith(exportCommand, { version: "test" }),
};
const command = (name: keyof typeof cli, args: string[]) =>
  Effect.runPromiseExit(cli[name](args).pipe(Effect.provide(NodeServices.layer)));

const quiet = { workers: 0, print: () => {} };

Deno.test("a model kind is one record: a toy kind trains, evaluates, predicts and exports through the ordinary entry points", async () => {
  const root = await mkdtemp(join(tmpdir(), "kappa-kind-"));
  try {
    // The spec decodes through the ordinary loader (a .json file), its own rule included.
    const specFile = join(root, "shares.json");
    await writeFile(specFile, k.experimentJson(toyExperiment()));
    const e = await Effect.runPromise(k.loadExperiment(specFile));
    assertEquals(e.model._tag as string, "ClassShares");
    const bad = await Effect.runPromise(
      Effect.flip(
        k.decodeExperiment(
          { ...toyExperiment(), model: { ...toyExperiment().model, ignoreIndex: 2 } },
          "bad",
        ),
      ),
    );
    assertEquals(bad.message, "model.ignoreIndex: 2 is a class id (0..3)");

    // train: straight, and stopped at 3 then resumed — bitwise the same (the loop is the ordinary one).
    const straight = join(root, "straight"), resumed = join(root, "resumed");
    const trained = await Effect.runPromise(k.train(e, { ...quiet, out: straight }));
    const stopped = await Effect.runPromiseExit(k.train(e, { ...quiet, out: resumed, stopAfter: 3 }));
    assert(Exit.isFailure(stopped) && String(stopped.cause).includes("stopped at step 3"), String(stopped));
    await Effect.runPromise(k.train(e, { ...quiet, out: resumed, resume: true }));
    assertEquals(metrics(resumed), metrics(straight));
    const lines = metrics(straight);
    assertEquals(lines.filter((l) => l.kind === "train").map((l) => l.step), [1, 2, 3, 4, 5, 6]);
    assert(
      lines.filter((l) => l.kind === "train").every((l) =>
        Number.isFinite(l.loss) && Object.keys(l.terms).length === 0
      ),
    );

    // Its headline metric, lower is better: best.safetensors holds the evaluation with the lowest MAE.
    const evals = lines.filter((l) => l.kind === "eval");
    assertEquals(evals.map((l) => [l.step, l.split, l.images, l.units]), [
      [2, "val", 16, "percent"],
      [4, "val", 16, "percent"],
      [6, "val", 16, "percent"],
    ]);
    const maes = evals.map((l) => l.MAE as number);
    assert(
      Math.max(...maes) > Math.min(...maes),
      `the evaluations must differ to tell the direction: ${maes}`,
    );
    const best = await Effect.runPromise(readBestRecord(join(straight, "checkpoints")));
    assertEquals(best, {
      metric: "MAE (val, 16 images)",
      value: Math.min(...maes),
      step: evals[maes.indexOf(Math.min(...maes))].step,
    });
    assertEquals(trained.headline, { name: "MAE", value: maes[2], images: 16 });
    // The run's own record, the kind's JSON, under the ordinary name.
    const record = JSON.parse(readFileSync(join(straight, "eval-val.json"), "utf8"));
    assertEquals([record.split, record.step, record.images, record.MAE], ["val", 6, 16, maes[2]]);

    // eval (the CLI's command, in this process): the best checkpoint, a record named for its step.
    assert(Exit.isSuccess(await command("eval", [straight, "--workers", "0"])));
    const bestStep = best!.step;
    const evalRecord = JSON.parse(
      readFileSync(
        join(straight, bestStep === 6 ? "eval-val.json" : `eval-val-step${bestStep}.json`),
        "utf8",
      ),
    );
    assertEquals([evalRecord.step, evalRecord.MAE], [bestStep, best!.value]);
    // A mode the kind does not offer is refused in one line.
    const slide = await command("eval", [straight, "--mode", "slide", "--workers", "0"]);
    assert(
      Exit.isFailure(slide) &&
        String(slide.cause).includes("eval: --mode slide: a ClassShares model evaluates in whole mode only"),
      String(slide),
    );

    // predict: the kind's JSON per image and its summary, for the best checkpoint.
    const image = join(root, "image.png");
    const scene = await Effect.runPromise(Effect.gen(function* () {
      const d = yield* k.openDataset(e.data.dataset, "val");
      return yield* d.read(d.samples[0]);
    }));
    await Deno.writeFile(
      image,
      await (await import("sharp")).default(scene.image, {
        raw: { width: scene.width, height: scene.height, channels: 3 },
      }).png().toBuffer(),
    );
    const out = join(root, "pred");
    assert(Exit.isSuccess(await command("predict", [straight, image, "--out", out])));
    const predicted = JSON.parse(readFileSync(join(out, "shares.json"), "utf8")).images[0].shares as Record<
      string,
      number
    >;
    assert(existsSync(join(out, "image-shares.json")));
    const shares = Object.values(predicted);
    assertEquals(shares.length, 4);
    assertClose([shares.reduce((a, b) => a + b, 0)], [1], { atol: 1e-5 });

    // export: `shares`, read back by a fresh ONNX Runtime session, equal to the in-process inference.
    const onnxFile = join(root, "shares.onnx");
    assert(Exit.isSuccess(await command("export", [straight, onnxFile])));
    const session = await ort.InferenceSession.create(onnxFile);
    assertEquals([...session.outputNames], ["shares"]);
    const run = await Effect.runPromise(k.loadRun(straight));
    const resized = await Effect.runPromise(k.resizeRgb(scene.image, scene.height, scene.width, 32, 32));
    const x = k.normalizeRgb(resized, 32, 32, e.data.test.mean, e.data.test.std);
    const got = await session.run({ images: new ort.Tensor("float32", x, [1, 3, 32, 32]) });
    const want = await runGraph(
      classSharesKind.bind(e as unknown as k.ExperimentOf<ClassShares>, () => Effect.die("no runs")).pipe(
        Effect.runSync,
      )
        .inferenceGraph(k.inferenceShapes(e, 1)),
      { images: k.value("float32", x, [1, 3, 32, 32]) },
      { state: Object.fromEntries(run.state) },
    );
    assertClose(got.shares.data as Float32Array, want.shares, {
      atol: 1e-6,
      message: "export vs in-process",
    });
    assertClose(shares, want.shares, { atol: 1e-6, message: "predict vs in-process" });
    await session.release();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

Deno.test("no program knows the toy kind, and train/, cli/ and eval/'s generic parts test no kind tags", () => {
  const files = (dir: string): string[] =>
    readdirSync(dir).filter((f) => f.endsWith(".ts")).map((f) => join(dir, f));
  const mentions = (pattern: RegExp, paths: string[]) =>
    paths.filter((f) => pattern.test(readFileSync(f, "utf8")));
  const programs = [...files("train"), ...files("cli"), ...files("eval")];
  assertEquals(mentions(/ClassShares|classShares|class shares/, programs), []);
  const generic = [
    ...files("train"),
    ...files("cli"),
    ...["eval/evaluation.ts", "eval/prediction.ts", "eval/export_model.ts", "eval/eval_record.ts"],
  ];
  assertEquals(mentions(/"(Segmenter|PanopticSegmenter|Classifier)"|requireTask|modelFor/, generic), []);
});
