/**
 * `deno task bench quantize <run-dir> [--quick]`: the int8 exports (`deno task export --quantize int8 |
 * int8-conv | int8-static`) against the float32 export of the same run: mIoU on the dataset's validation split through the
 * export's documented pre/post-processing (fit to the export size, pad, classes mapped back to the
 * frame), the share of pixels whose class changes, and one-image latency at T = 1 and 2 in alternating
 * rounds. Prints the section and rewrites "Reduced precision (export)" in BENCHMARKS.md (not with
 * --quick, which evaluates 10 frames).
 */
import { Effect } from "effect";
import type * as ort from "onnxruntime-node";
import {
  exportedModel,
  exportModel,
  graphStage,
  loadRun,
  openDataset,
  openSession,
  plan,
  type Predictor,
  type Value,
  value,
} from "../mod.ts";
import {
  calibrateExport,
  CALIBRATION_IMAGES,
  EXPORT_QUANTIZATIONS,
  fitSize,
  normalizeRgb,
  predictAtExportSize,
  resizeRgb,
  runSession,
  segmentationAccumulator,
  tensorFeeds,
} from "../profiling.ts";
import { averageLoad, type Load, QUIET_LOAD, waitForQuiet, withLoad } from "./load.ts";
import { machine } from "./machine.ts";
import { fixed, formatSpread, recordSection, table } from "../figures/markdown.ts";
import { summarize, type Summary } from "../figures/stats.ts";
import { type Repeats, timeRuns } from "./measure.ts";
import { initialState } from "./perf_runs.ts";
import { PERF_MODEL, perfBatch, perfExperiment, perfTrainingGraph } from "./segmenter_model.ts";

const SECTION = "Reduced precision (export)";
const BENCHMARKS = new URL("../BENCHMARKS.md", import.meta.url);
const log = (line: string) => console.error(`bench quantize: ${line}`);

type Latencies = { readonly ms: Map<string, number[]>; readonly loads: Map<string, Load[]> };
const key = (label: string, threads: number) => `${label}@${threads}`;

/** One-image latency of each side at T = 1 and 2, sides alternating, rounds pooled. */
const latencies = async (
  sides: readonly Side[],
  image: Float32Array,
  [h, w]: readonly [number, number],
  rounds: number,
  repeats: Repeats,
  quick: boolean,
): Promise<Latencies> => {
  const ms = new Map<string, number[]>(), loads = new Map<string, Load[]>();
  for (let round = 0; round < rounds; round++) {
    for (const threads of [1, 2]) {
      for (const s of sides) {
        log(`round ${round + 1}/${rounds}, T=${threads}: ${s.label} (${h}×${w})…`);
        await waitForQuiet(QUIET_LOAD, quick ? 1 : 5);
        const m = await withLoad(() =>
          Effect.runPromise(Effect.scoped(Effect.gen(function* () {
            const session = yield* openSession(s.label, s.bytes, { threads, optimization: "all" });
            const feeds = tensorFeeds({ images: value("float32", image, [1, 3, h, w]) });
            return (yield* timeRuns(Effect.promise(() => session.run(feeds as never)), repeats)).ms;
          })))
        );
        ms.set(key(s.label, threads), [...(ms.get(key(s.label, threads)) ?? []), ...m.result]);
        loads.set(key(s.label, threads), [...(loads.get(key(s.label, threads)) ?? []), m.load]);
      }
    }
  }
  return { ms, loads };
};

const latencyTable = (sides: readonly Side[], l: Latencies) => {
  const latency = (label: string, threads: number): Summary => summarize(l.ms.get(key(label, threads))!);
  const load = (label: string, threads: number) => averageLoad(l.loads.get(key(label, threads))!);
  return table<number>([
    { header: "threads", cell: (t) => String(t) },
    ...sides.map((s) => ({
      header: `${s.label} ms`,
      cell: (t: number) => formatSpread(latency(s.label, t)),
    })),
    ...sides.slice(1).map((s) => ({
      header: `${s.label} / float32`,
      cell: (t: number) => fixed(latency(s.label, t).median / latency("float32", t).median, 2),
    })),
    {
      header: `other load, cores (${sides.map((s) => s.label).join(" / ")})`,
      cell: (t) => sides.map((s) => fixed(load(s.label, t), 2)).join(" / "),
    },
  ], [1, 2]);
};

const describePerf = () => {
  const b = PERF_MODEL.spec.backbone;
  return b._tag === "ViT"
    ? `ViT d = ${b.dim}, depth ${b.depth}, ${b.heads} heads, patch ${b.patchSize}`
    : b._tag;
};

/** A predictor over an exported model's session: classes at the export size. */
const sessionPredictor = (session: ort.InferenceSession): Predictor => ({
  predict: (image, height, width) =>
    Effect.promise(async () => {
      const out = await runSession(session, { images: value("float32", image, [1, 3, height, width]) });
      const classes = (out as unknown as Record<string, Value>).classes.data as BigInt64Array;
      return { classes: Int32Array.from(classes, Number) };
    }),
});

interface Side {
  readonly label: string;
  readonly bytes: Uint8Array;
}

export const main = async (args: string[]): Promise<void> => {
  const quick = args.includes("--quick");
  const runDir = args.find((a) => !a.startsWith("--"));
  if (!runDir) throw new Error("usage: deno task bench quantize <run-dir> [--quick]");
  const started = performance.now();
  const run = await Effect.runPromise(loadRun(runDir));
  const e = run.experiment;
  const model = await Effect.runPromise(exportedModel(e, run.state, { ...run, runs: loadRun }));
  log(`calibrating int8-static on ${CALIBRATION_IMAGES} training images…`);
  const ranges = await Effect.runPromise(calibrateExport(e, run.state, model));
  const sides: Side[] = [
    { label: "float32", bytes: exportModel(e, run.state, model).bytes },
    ...EXPORT_QUANTIZATIONS.map((q) => ({
      label: q,
      bytes: exportModel(e, run.state, model, { quantize: q, ranges }).bytes,
    })),
  ];
  const split = "val";
  const dataset = await Effect.runPromise(openDataset(e.data.dataset, split));
  const samples = quick ? dataset.samples.slice(0, 10) : dataset.samples;
  const ignoreIndex = dataset.classes.ignoreIndex;
  const numClasses = e.model.classes;

  // Accuracy: every frame through both exports, the same pre/post-processing.
  log(`evaluating ${samples.length} ${split} frames with both exports…`);
  const accuracy = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const predictors = [];
    for (const s of sides) {
      predictors.push(sessionPredictor(yield* openSession(s.label, s.bytes, { threads: 2 })));
    }
    const acc = sides.map(() => segmentationAccumulator({ numClasses, ignoreIndex }));
    const same = sides.map(() => 0);
    let pixels = 0;
    for (const sample of samples) {
      const img = yield* dataset.read(sample);
      const rgb = { data: img.image, height: img.height, width: img.width };
      const classes: Int32Array[] = [];
      for (const p of predictors) classes.push((yield* predictAtExportSize(p, rgb, e)).classes);
      classes.forEach((c, s) => {
        acc[s].add(c, img.labels);
        for (let i = 0; i < c.length; i++) same[s] += c[i] === classes[0][i] ? 1 : 0;
      });
      pixels += classes[0].length;
    }
    return { summaries: acc.map((a) => a.summary()), same: same.map((n) => n / pixels) };
  })));

  // Latency: one normalized frame at the export size, sides alternating, rounds pooled.
  const [h, w] = e.data.train.cropSize;
  const first = await Effect.runPromise(dataset.read(samples[0]));
  const [fh, fw] = fitSize(first.height, first.width, [h, w]);
  const resized = await Effect.runPromise(resizeRgb(first.image, first.height, first.width, fh, fw));
  const image = normalizeRgb(resized, fh, fw, e.data.test.mean, e.data.test.std, h, w, 0);
  const rounds = quick ? 1 : 3, repeats = quick ? { warmup: 2, runs: 5 } : { warmup: 5, runs: 20 };
  log("measuring latency (waiting for a quiet machine first)…");
  await waitForQuiet(QUIET_LOAD, quick ? 2 : 30);
  const quickstartLatency = await latencies(sides, image, [h, w], rounds, repeats, quick);

  // The perf model (bench perf's ViT-Tiny Segmenter + RankSeg, seeded initial weights): matmul-bound.
  const pm = PERF_MODEL, pg = perfTrainingGraph(pm);
  const initial = await initialState(plan(pg.name, pg, [graphStage(pg)]), 0);
  const perfModel = Effect.runSync(exportedModel(perfExperiment(pm), initial));
  const perfSides: Side[] = [
    { label: "float32", bytes: exportModel(perfExperiment(pm), initial, perfModel).bytes },
    {
      label: "int8",
      bytes: exportModel(perfExperiment(pm), initial, perfModel, { quantize: "int8" }).bytes,
    },
  ];
  const perfImage = perfBatch(pm).images.slice(0, 3 * pm.size * pm.size);
  const perfLatency = await latencies(perfSides, perfImage, [pm.size, pm.size], rounds, repeats, quick);

  const mc = machine();
  const f32 = accuracy.summaries[0];
  const mb = (b: Uint8Array) => fixed(b.length / 1e6, 2);
  const body = `
Command: \`npx --yes deno@2.9.6 task bench quantize ${runDir}\` (${new Date().toISOString().slice(0, 10)}, ${
    fixed((performance.now() - started) / 60000, 1)
  } min). Machine: ${mc.cpu}, ${mc.cores} cores; onnxruntime-node ${mc.ort}, CPU execution provider.

The run's float32 export against \`deno task export --quantize int8\`, \`int8-conv\` and \`int8-static\` of
the same checkpoint (${run.checkpoint}): every parameter matmul becomes DynamicQuantizeLinear + MatMulInteger;
with "int8-conv" every convolution ConvInteger (weights symmetric int8 per output column / channel, activations
uint8 per tensor, quantized at run time; \`onnx/quantize.ts\`); with "int8-static" every convolution in QDQ
form, its input and output uint8 with scales calibrated on ${CALIBRATION_IMAGES} training images (min/max), weights int8
per output channel, biases int32, which ONNX Runtime fuses into QLinearConv / QLinearAdd
(\`onnx/quantize_static.ts\`), the matmuls as in "int8". Attention's activation matmuls, normalization and
the elementwise ops stay float32. Model file: ${sides.map((s) => `${s.label} ${mb(s.bytes)} MB`).join(", ")}.

Accuracy on ${dataset.name} ${split} (${samples.length} frames, each fitted to the export size
${h}×${w}, classes mapped back to the frame as the export's metadata says):

${
    table<number>([
      { header: "export", cell: (i) => sides[i].label },
      { header: "mIoU", cell: (i) => fixed(100 * accuracy.summaries[i].mIoU, 2) },
      { header: "change, points", cell: (i) => fixed(100 * (accuracy.summaries[i].mIoU - f32.mIoU), 2) },
      { header: "aAcc", cell: (i) => fixed(100 * accuracy.summaries[i].aAcc, 2) },
      { header: "pixels with float32's class", cell: (i) => `${fixed(100 * accuracy.same[i], 2)} %` },
    ], sides.map((_, i) => i))
  }

Latency of one ${h}×${w} image (median (p10–p90) of ${rounds} × ${repeats.runs} runs after ${repeats.warmup} warm-up
runs, sides alternating):

${latencyTable(sides, quickstartLatency)}

The perf model of \`bench perf\` (${describePerf()}; seeded initial weights, one 256×256 image; mostly
matmuls, no convolution but the patch embedding, which kappa computes as a matmul):

${latencyTable(perfSides, perfLatency)}
`;
  console.log(`## ${SECTION}\n${body}`);
  if (quick) return log("--quick: BENCHMARKS.md is left unchanged");
  await recordSection(BENCHMARKS.pathname, SECTION, body);
  log(`wrote the "${SECTION}" section of ${BENCHMARKS.pathname}`);
};
