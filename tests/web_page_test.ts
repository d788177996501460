/**
 * The page's modules (web/page/) against kappa's own functions, without a browser: the page imports
 * nothing of kappa's but core/, so each step it repeats — resizing, fitting and normalizing, mapping
 * classes back, colours, safetensors, dropout noise, the training loop — is checked here to give kappa's
 * values. The training export (train/export_training.ts) and what `deno task web` serves are checked too.
 */
import * as ort from "onnxruntime-node";
import { Effect } from "effect";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { webExperiment } from "./fixtures/web_experiment.ts";
import { tinyPanoptic } from "./fixtures/tiny_panoptic.ts";
import { resizeRgb } from "../web/page/resize.ts";
import { classShares, exportInfo, exportInput, fitSize, mapBack } from "../web/page/export_input.ts";
import { defaultPalette } from "../web/page/palette.ts";
import * as pageSafetensors from "../web/page/safetensors.ts";
import { classMapPng } from "../web/page/png.ts";
import { onnxMetadata } from "../web/page/onnx_metadata.ts";
import { describeError } from "../web/page/errors.ts";
import {
  makeTrainer,
  noise,
  type OrtLike,
  type TrainingSettings as PageSettings,
} from "../web/page/trainer.ts";
import { resizeRgb as sharpResize } from "../data/resize.ts";
import { readMask, readRgb } from "../data/decode.ts";
import * as kappaExport from "../eval/export_size.ts";
import { defaultPalette as kappaPalette } from "../eval/colorize.ts";
import { decodeSafetensors, encodeSafetensors } from "../io/safetensors.ts";
import { decodeOnnx } from "../onnx/lower.ts";
import { exportModel } from "../eval/export_model.ts";
import { exportedModel } from "../kinds/export.ts";
import {
  exportExperimentTraining,
  exportRunTraining,
  TRAINING_FILES,
  type TrainingSettings,
  writeTrainingExport,
} from "../train/export_training.ts";
import { noiseFeed } from "../train/run_state.ts";
import { train } from "../train/train.ts";
import { loadRun } from "../train/load_run.ts";
import { decodeExperiment, type Experiment } from "../dsl/experiment.ts";
import * as m from "../dsl/model.ts";
import { trainingStages } from "../interpret/graphs.ts";
import { optimizerConfig } from "../interpret/optimizer.ts";
import { plan } from "../ir/plan.ts";
import { value } from "../ir/value.ts";
import { execute } from "../runtime/execute.ts";
import { learningRate } from "../dsl/training.ts";
import { NOISE } from "../layers/dropout.ts";
import { nameKey } from "../ir/init.ts";
import { webSource } from "../web/sources.ts";
import { cli } from "./cli_runner.ts";

// training.json as the exporter writes it is what the page reads (a compile-time check).
const _settingsFit: PageSettings = {} as TrainingSettings;

const VAL = "../shared/data/camvid/images/val/";
const frames = (await readdir(VAL)).sort().slice(0, 3);

const differing = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
};

Deno.test("web page: resizing gives libvips' bytes (sharp's resize) on CamVid frames, down, up and mixed", async () => {
  const sizes: [number, number][] = [[176, 235], [96, 128], [32, 43], [225, 300], [720, 960], [750, 1000], [
    361,
    481,
  ]];
  const mixed: [number, number][] = [[360, 600], [300, 600], [500, 300], [100, 480]];
  for (const file of frames) {
    const img = await Effect.runPromise(readRgb(VAL + file));
    for (const [h, w] of file === frames[0] ? [...sizes, ...mixed] : sizes) {
      const expected = await Effect.runPromise(sharpResize(img.data, img.height, img.width, h, w));
      const got = resizeRgb(img.data, img.height, img.width, h, w);
      assertEquals(got.length, expected.length);
      assertEquals(differing(got, expected), 0, `${file} ${img.height}×${img.width} → ${h}×${w}`);
    }
  }
});

Deno.test("web page: fitting, normalizing and mapping back are eval/export_size.ts's", async () => {
  for (const [h0, w0] of [[360, 480], [480, 360], [1, 500], [719, 13], [96, 128]]) {
    for (const size of [[96, 128], [176, 240], [32, 48]] as const) {
      assertEquals(fitSize(h0, w0, size), kappaExport.fitSize(h0, w0, size));
    }
  }
  const run = webExperiment();
  const img = await Effect.runPromise(readRgb(VAL + frames[0]));
  const kappa = await Effect.runPromise(kappaExport.exportInput(img, run));
  const info = {
    experiment: "x",
    height: 96,
    width: 128,
    mean: run.data.test.mean,
    std: run.data.test.std,
    classes: 11,
    classNames: [],
  };
  const page = exportInput(img.data, img.height, img.width, info);
  assertEquals(page.fitted, kappa.fitted);
  assertEquals(differing(page.images, kappa.images), 0);
  const classes = Int32Array.from({ length: 96 * 128 }, (_, i) => (i * 7919) % 11);
  assertEquals(
    differing(
      mapBack(BigInt64Array.from(classes, BigInt), 128, kappa.fitted, [img.height, img.width]),
      kappaExport.mapBack(classes, [96, 128], kappa.fitted, [img.height, img.width]),
    ),
    0,
  );
  assertEquals(classShares(Int32Array.of(2, 2, 0, 5, 2, 0), 6).present, [2, 0, 5]);
  assertEquals([...classShares(Int32Array.of(2, 2, 0, 5, 2, 0), 6).counts], [2, 0, 3, 0, 0, 1]);
});

Deno.test("web page: the default palette is eval/colorize.ts's", () => {
  assertEquals(defaultPalette(300), kappaPalette(300));
});

Deno.test("web page: safetensors written by the page read back with io/safetensors.ts, and the other way round", async () => {
  const tensors = new Map<string, pageSafetensors.Tensor>([
    ["b.weight", { dtype: "F32", shape: [2, 3], data: Float32Array.of(1, -2, 3.5, 4, 5, 6) }],
    ["a.ids", { dtype: "I32", shape: [3], data: Int32Array.of(7, -8, 9) }],
    ["z", { dtype: "U8", shape: [1], data: Uint8Array.of(3) }],
  ]);
  const metadata = { "checkpoint.step": "9", "train.loop": '{"a":1}' };
  const bytes = pageSafetensors.encodeSafetensors(tensors, metadata);
  const read = await Effect.runPromise(decodeSafetensors(bytes, "page.safetensors"));
  assertEquals(read.metadata, metadata);
  for (const [name, t] of tensors) {
    assertEquals(read.tensors[name].dtype, t.dtype);
    assertEquals(read.tensors[name].shape, [...t.shape]);
    assertEquals([...read.tensors[name].data as Float32Array], [...t.data as Float32Array]);
  }
  // The same bytes as kappa's encoder (tensor order, header padding).
  assertEquals(bytes, encodeSafetensors(Object.fromEntries(tensors) as never, metadata));
  const back = pageSafetensors.decodeSafetensors(bytes, "x");
  assertEquals([...back.tensors.get("b.weight")!.data as Float32Array], [1, -2, 3.5, 4, 5, 6]);
  assertEquals(back.metadata, metadata);
  let error = "";
  try {
    pageSafetensors.decodeSafetensors(bytes.subarray(0, 40), "cut.safetensors");
  } catch (e) {
    error = (e as Error).message;
  }
  assertEquals(error, "cut.safetensors: header runs past the end of the file");
});

Deno.test("web page: the class map PNG holds the class ids (8-bit, and 16-bit past 256 classes)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-web-png-"));
  try {
    for (const classCount of [11, 300]) {
      const [w, h] = [37, 23];
      const classes = Int32Array.from({ length: w * h }, (_, i) => (i * 31) % classCount);
      const file = join(dir, `${classCount}.png`);
      await writeFile(file, await classMapPng(classes, w, h, classCount));
      const mask = await Effect.runPromise(readMask(file));
      assertEquals([mask.width, mask.height], [w, h]);
      assertEquals(differing(mask.data, classes), 0);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("web page: metadata_props read from the bytes; a file without kappa's is not a kappa export", async () => {
  const e = await Effect.runPromise(decodeExperiment(webExperiment(), "web"));
  const x = await Effect.runPromise(exportExperimentTraining(e, { shardBatches: 1, steps: 2, workers: 0 }));
  const model = x.files[TRAINING_FILES.model];
  const expected = Object.fromEntries(decodeOnnx(model).metadataProps.map((p) => [p.key!, p.value!]));
  assertEquals(onnxMetadata(model), expected);
  const info = exportInfo(onnxMetadata(model), "model.onnx");
  assert(!("error" in info));
  assertEquals([info.height, info.width, info.classes, info.classNames[3]], [96, 128, 11, "road"]);
  // The step graph has no kappa.* metadata: refused with the missing keys named.
  assertEquals(
    exportInfo(onnxMetadata(x.files[TRAINING_FILES.step]), "train-step.onnx"),
    {
      error: "train-step.onnx: not a kappa export: its metadata_props have no kappa.input_height, " +
        "kappa.input_width, kappa.mean, kappa.std, kappa.classes (write one with npx --yes deno@2.9.6 task " +
        "export <run> model.onnx)",
    },
  );
  assertEquals(
    exportInfo({ ...expected, "kappa.mean": "1,2" }, "m.onnx"),
    { error: "m.onnx: kappa export with unreadable metadata: kappa.mean" },
  );
  let error = "";
  try {
    onnxMetadata(new TextEncoder().encode("\xff\xff\xff not protobuf"));
  } catch (e) {
    error = (e as Error).message;
  }
  assert(error !== "", "garbage is refused");
});

Deno.test("web page: out of memory is named as such in the page's error lines", () => {
  assertEquals(
    describeError("training step 12", new RangeError("Array buffer allocation failed")),
    "training step 12: out of memory (Array buffer allocation failed); close other tabs, or use a smaller " +
      "model, photo or shard",
  );
  assertEquals(
    describeError("model.onnx: cannot open on wasm", new Error("Aborted(OOM)\nstack")),
    "model.onnx: cannot open on wasm: out of memory (Aborted(OOM)); close other tabs, or use a smaller model, " +
      "photo or shard",
  );
  assertEquals(describeError("x", new Error("invalid input 'images'")), "x: invalid input 'images'");
});

Deno.test("web page: dropout noise is train/run_state.ts's, element for element", () => {
  const site = { name: "noise:model.xi.block.mlp.drop1", dtype: "float32" as const, shape: [2, 27, 64] };
  for (const [seed, step] of [[0, 1], [7, 523], [4294967295, 10_000_000]]) {
    const kappa = noiseFeed(seed, step, site).data as Float32Array;
    const page = noise(seed, 0x4e4f4953, step, nameKey(site.name), 2 * 27 * 64);
    assertEquals(differing(page, kappa), 0);
  }
});

/** The tiny run of the web fixture, trained once for the tests below. */
let runDir: Promise<string> | undefined;
const trainedRun = () =>
  runDir ??= (async () => {
    const dir = join(await mkdtemp(join(tmpdir(), "kappa-web-run-")), "run");
    await Effect.runPromise(
      train(webExperiment(), { out: dir, workers: 0, print: () => {}, skipFinalEval: true }),
    );
    return dir;
  })();

Deno.test({
  name:
    "web page: the page's training loop on onnxruntime-node gives kappa's losses (training export of a run)",
  sanitizeResources: false,
  fn: async () => {
    const dir = await trainedRun();
    const x = await Effect.runPromise(
      exportRunTraining(dir, undefined, { shardBatches: 2, steps: 3, workers: 0 }),
    );
    const s = x.settings;
    assertEquals([s.startStep, s.lr.length, s.shard.batches, s.batchFeeds], [4, 3, 2, ["images", "labels"]]);
    assertEquals(s.noise.sites.length, 4);
    const trainer = await makeTrainer(ort as unknown as OrtLike, {
      step: x.files[TRAINING_FILES.step],
      state: x.files[TRAINING_FILES.state],
      shard: x.files[TRAINING_FILES.shard],
    }, s);
    const page: number[] = [];
    for (let i = 0; i < 3; i++) page.push((await trainer.step()).losses.loss);
    await trainer.release();
    // kappa: the run's plan from its checkpoint, the same batches (cycled), lr and noise.
    const run = await Effect.runPromise(loadRun(dir));
    const e = run.experiment, t = e.train;
    const shard = await Effect.runPromise(decodeSafetensors(x.files[TRAINING_FILES.shard], "shard"));
    const kappa = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const { graph, stages } = trainingStages(
        e.model,
        { batch: 2, height: 96, width: 128, trainSize: [96, 128] },
        optimizerConfig(t),
      );
      const p = plan(e.name, graph, stages);
      const ex = yield* execute(p, { seed: t.seed });
      for (const name of ex.state.keys()) ex.state.set(name, run.state.get(name)!);
      const losses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const step = 5 + i, b = i % 2;
        const part = (name: string, per: number) =>
          (shard.tensors[name].data as Float32Array).slice(b * 2 * per, (b + 1) * 2 * per);
        const out = yield* ex.run({
          images: value("float32", part("images", 3 * 96 * 128), [2, 3, 96, 128]),
          labels: value("int32", part("labels", 96 * 128) as unknown as Int32Array, [2, 96, 128]),
          lr: value("float32", Float32Array.of(learningRate(t.schedule, t.optimizer.lr, step, 7)), []),
          step: value("float32", Float32Array.of(step), []),
          ...Object.fromEntries(
            p.feeds.filter((f) => f.name.startsWith(NOISE)).map((f) => [f.name, noiseFeed(t.seed, step, f)]),
          ),
        });
        losses.push(out.get("loss")!.data[0] as number);
      }
      return losses;
    })));
    for (let i = 0; i < 3; i++) {
      assert(
        Math.abs(page[i] - kappa[i]) <= 1e-6 * Math.abs(kappa[i]),
        `step ${5 + i}: ${page[i]} vs ${kappa[i]}`,
      );
    }
    // Its checkpoint is a run's: loadRun reads it, at the step it reached.
    const file = join(dir, "page.safetensors");
    await writeFile(file, trainer.checkpoint());
    const loaded = await Effect.runPromise(loadRun(dir, file));
    assertEquals(loaded.step, 7);
    assertEquals([...loaded.state.keys()].sort(), s.state.map((v) => v.name).sort());
  },
});

Deno.test("web page: the training export refuses plans it cannot run, naming the field", async () => {
  const web = webExperiment();
  // LarvSeg with its attentive classifier, on data that has the image-level labels it needs.
  const larvseg: Experiment = {
    ...web,
    data: { ...web.data, dataset: { ...web.data.dataset, imageLabels: "crop" } },
    model: m.larvSegmenter({
      classes: 11,
      ignoreIndex: 11,
      backbone: m.convNet({ widths: [8, 16], blocksPerStage: 1 }),
      attentiveClassifier: m.attentiveClassifier({ slots: 2, pixels: 4, labelsPerImage: 4 }),
    }),
  };
  const a = await Effect.runPromise(Effect.flip(exportExperimentTraining(larvseg)));
  assertEquals(
    a.message,
    "model.attentiveClassifier: its training plan has host stages (bank read, bank write) between graphs; the page " +
      "runs plans of one graph (a plain segmenter, or LarvSeg without the attentive classifier)",
  );
  const b = await Effect.runPromise(Effect.flip(exportExperimentTraining(tinyPanoptic())));
  assertEquals(
    b.message,
    "model: its training plan has host stages (matching) between graphs; the page runs plans of one graph " +
      "(a plain segmenter, or LarvSeg without the attentive classifier)",
  );
});

Deno.test({
  name: "web server sources: a run, a training export folder, a model file, nothing, and a bad path",
  sanitizeResources: false,
  fn: async () => {
    const dir = await trainedRun();
    const fromRun = await Effect.runPromise(webSource(dir, undefined, { shardBatches: 1, steps: 2 }));
    assertEquals(fromRun.manifest.training, "/files/training.json");
    assertEquals(fromRun.manifest.model, "/files/model.onnx");
    assertEquals(fromRun.manifest.colors?.[3], [128, 64, 128]); // CamVid's road
    assertEquals([...fromRun.files.keys()].sort(), Object.values(TRAINING_FILES).sort());
    const settings = JSON.parse(new TextDecoder().decode(fromRun.files.get(TRAINING_FILES.settings)));
    assertEquals([settings.startStep, settings.lr.length, settings.shard.batches], [4, 2, 1]);
    const model = join(dir, "m.onnx");
    const run = await Effect.runPromise(loadRun(dir));
    const exported = await Effect.runPromise(exportedModel(run.experiment, run.state));
    await writeFile(model, exportModel(run.experiment, run.state, exported).bytes);
    const fromModel = await Effect.runPromise(webSource(model));
    assertEquals([fromModel.manifest.model, fromModel.manifest.training], ["/files/m.onnx", null]);
    assertEquals((await Effect.runPromise(webSource(undefined))).manifest.model, null);
    const bad = await Effect.runPromise(Effect.flip(webSource(join(dir, "checkpoints"))));
    assertEquals(
      bad.message,
      `${
        join(dir, "checkpoints")
      }: neither a run folder (no experiment.json) nor a training export (no training.json)`,
    );
    // A training export folder serves its files as they are.
    const folder = join(dir, "export");
    await Effect.runPromise(writeTrainingExport(folder, await Effect.runPromise(exportRunTraining(dir))));
    const fromFolder = await Effect.runPromise(webSource(folder));
    assertEquals(
      fromFolder.files.get(TRAINING_FILES.state),
      new Uint8Array(await readFile(join(folder, TRAINING_FILES.state))),
    );
    assertEquals(fromFolder.manifest.colors?.[3], [128, 64, 128]);
  },
});

Deno.test({
  name: "web CLI: export --training writes the folder web serves; a bad source is one line",
  sanitizeResources: false,
  fn: async () => {
    const dir = await trainedRun();
    const folder = join(dir, "cli-export");
    const r = await cli("export", dir, folder, "--training");
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await readdir(folder)).sort(), Object.values(TRAINING_FILES).sort());
    assert(r.stdout.includes(`serve it with: npx --yes deno@2.9.6 task web ${folder}`), r.stdout);
    const settings = JSON.parse(await readFile(join(folder, TRAINING_FILES.settings), "utf8"));
    assertEquals([settings.startStep, settings.lr.length, settings.shard.batches], [4, 100, 4]);
    const bad = await cli("web", join(dir, "nothing-here"));
    assertEquals([bad.code, bad.stderr], [1, `${join(dir, "nothing-here")}: no such file or folder\n`]);
  },
});
