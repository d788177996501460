/**
 * `deno task bench quantize <run-dir> [--quick]`: the int8 exports (`deno task export --quantize int8 |
 * int8-conv | int8-static`) against the float32 export of the same run, each with every weight format of
 * onnx/quantize.ts that gives another file (the exports' "int7-dw8", 7-bit "int7", full-range "int8", and
 * "uint8" for ONNX Runtime's u8·u8 kernels): mIoU on the dataset's validation split through the export's documented pre/post-processing (fit
 * to the export size, pad, classes mapped back to the frame), the share of pixels whose class changes, and
 * one-image latency at T = 1 and 2 in alternating rounds. Which u8·s8 kernels ONNX Runtime runs in this
 * process (exact with VNNI, or pair sums saturating in int16 without) is probed and named with the CPU.
 * Prints the section and rewrites this CPU kind's "Reduced precision (export)" subsection in BENCHMARKS.md
 * (not with --quick, which evaluates 10 frames).
 *
 * To measure ONNX Runtime's AVX2 kernels on an AVX-512 CPU, run it with `LD_PRELOAD=` the library that
 * bench/cpuid_avx2.c builds (it hides AVX-512 and VNNI from CPUID; with CPUID_KEEP_AVX512=1 only VNNI); the
 * command line and the subsection's title in the report say so.
 */
import { Effect } from "effect";
import * as ort from "onnxruntime-node";
import onnxProto from "onnx-proto";
import type * as P from "onnx-proto";
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
  EXPORT_WEIGHT_FORMAT,
  type ExportQuantization,
  fitSize,
  normalizeRgb,
  predictAtExportSize,
  resizeRgb,
  runSession,
  segmentationAccumulator,
  tensorFeeds,
  WEIGHT_FORMATS,
  type WeightFormat,
} from "../profiling.ts";
import { averageLoad, type Load, QUIET_LOAD, waitForQuiet, withLoad } from "./load.ts";
import { machine } from "./machine.ts";
import { fixed, formatGenerated, formatSpread, replaceSubsection, table } from "../figures/markdown.ts";
import { summarize, type Summary } from "../figures/stats.ts";
import { type Repeats, timeRuns } from "./measure.ts";
import { initialState } from "./perf_runs.ts";
import { PERF_MODEL, perfBatch, perfExperiment, perfTrainingGraph } from "./segmenter_model.ts";

const SECTION = "Reduced precision (export)";
const { onnx } = onnxProto as unknown as typeof P;
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

/** One row per side: its latency at T = 1 and 2, the ratio to float32's, and the other processes' load. */
const latencyTable = (sides: readonly Side[], l: Latencies) => {
  const latency = (label: string, threads: number): Summary => summarize(l.ms.get(key(label, threads))!);
  const load = (label: string, threads: number) => averageLoad(l.loads.get(key(label, threads))!);
  return table<Side>([
    { header: "export", cell: (s) => s.label },
    ...[1, 2].map((t) => ({ header: `T = ${t} ms`, cell: (s: Side) => formatSpread(latency(s.label, t)) })),
    ...[1, 2].map((t) => ({
      header: `÷ float32, T = ${t}`,
      cell: (s: Side) => fixed(latency(s.label, t).median / latency("float32", t).median, 2),
    })),
    {
      header: "other load, cores (T = 1 / 2)",
      cell: (s) => `${fixed(load(s.label, 1), 2)} / ${fixed(load(s.label, 2), 2)}`,
    },
  ], sides);
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
  /** The weight format of a quantized side. */
  readonly format?: WeightFormat;
}

/** A quantized side's label: the export's name, and the weight format when it is not the exports' own. */
const sideLabel = (
  q: ExportQuantization,
  f: WeightFormat,
) => (f === EXPORT_WEIGHT_FORMAT ? q : `${q} (${f})`);

/** Whether two models have the same graph (their metadata, which names the weight format, aside). */
const sameGraph = (a: Uint8Array, b: Uint8Array) => {
  const graph = (m: Uint8Array) => onnx.GraphProto.encode(onnx.ModelProto.decode(m).graph!).finish();
  const [x, y] = [graph(a), graph(b)];
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

/**
 * Whether ONNX Runtime's u8·s8 integer kernels in this process add products pairwise in a saturating int16
 * (VPMADDUBSW: x86 without VNNI) or exactly (VNNI, or another architecture): one MatMulInteger of rows of
 * 255s by columns of 127s, whose pairs of products (64,770) exceed 32,767.
 */
const u8s8Kernels = async (): Promise<string> => {
  const [m, k, n] = [4, 64, 16];
  const tensor = (name: string, elemType: number, dims: number[]) => ({
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  });
  const bytes = onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 18 }],
    graph: {
      name: "u8s8",
      node: [{ opType: "MatMulInteger", input: ["a", "b"], output: ["y"] }],
      initializer: [{ name: "b", dims: [k, n], dataType: 3, rawData: new Uint8Array(k * n).fill(127) }],
      input: [tensor("a", 2, [m, k])],
      output: [tensor("y", 6, [m, n])],
    },
  }).finish();
  const y = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const session = yield* openSession("u8s8", bytes, { threads: 1 });
    const out = yield* Effect.promise(() =>
      session.run({ a: new ort.Tensor("uint8", new Uint8Array(m * k).fill(255), [m, k]) })
    );
    return ((out as unknown as Record<string, Value>).y.data as Int32Array)[0];
  })));
  const exact = 255 * 127 * k;
  return y === exact
    ? "exact (no int16 saturation: VNNI or not x86)"
    : `pair sums saturating in int16 (no VNNI: ${y.toLocaleString("en-US")} for ${
      exact.toLocaleString("en-US")
    })`;
};

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
  const kernels = await u8s8Kernels();
  log(`ONNX Runtime's u8·s8 kernels here: ${kernels}`);
  // Each export in each weight format, but for formats that give the same graph as an earlier one (e.g.
  // "int7" and "int7-dw8" without depthwise QLinearConv), which are only named.
  const sameFile: string[] = [];
  const sides: Side[] = [{ label: "float32", bytes: exportModel(e, run.state, model).bytes }];
  for (const q of EXPORT_QUANTIZATIONS) {
    const mine: Side[] = [];
    for (const f of WEIGHT_FORMATS) {
      const side = {
        label: sideLabel(q, f),
        format: f,
        bytes: exportModel(e, run.state, model, { quantize: q, ranges, weightFormat: f }).bytes,
      };
      const same = mine.find((s) => sameGraph(s.bytes, side.bytes));
      if (same) sameFile.push(`${side.label} is ${same.label}`);
      else mine.push(side);
    }
    sides.push(...mine);
  }
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
  // The perf model has no convolution: "int7" is the same file as "int7-dw8".
  const perfSides: Side[] = [
    { label: "float32", bytes: exportModel(perfExperiment(pm), initial, perfModel).bytes },
    ...WEIGHT_FORMATS.filter((f) => f !== "int7").map((f) => ({
      label: sideLabel("int8", f),
      format: f,
      bytes: exportModel(perfExperiment(pm), initial, perfModel, { quantize: "int8", weightFormat: f }).bytes,
    })),
  ];
  const perfImage = perfBatch(pm).images.slice(0, 3 * pm.size * pm.size);
  const perfLatency = await latencies(perfSides, perfImage, [pm.size, pm.size], rounds, repeats, quick);

  const mc = machine();
  const f32 = accuracy.summaries[0];
  const mb = (b: Uint8Array) => fixed(b.length / 1e6, 2);
  // Under bench/cpuid_avx2.c, /proc/cpuinfo still lists what CPUID no longer tells ONNX Runtime.
  const preload = Deno.env.get("LD_PRELOAD"), keepAvx512 = Deno.env.get("CPUID_KEEP_AVX512");
  const hidden = keepAvx512 ? "VNNI" : "AVX-512 and VNNI";
  const title = `${mc.cpu}${preload ? `, ${hidden} hidden from CPUID (LD_PRELOAD)` : ""}`;
  // Under the library, the deno binary runs the bench itself: npx's node would take the CPUID faults.
  const command = preload
    ? `${
      keepAvx512 ? `CPUID_KEEP_AVX512=${keepAvx512} ` : ""
    }LD_PRELOAD=${preload} deno task bench quantize ${runDir}\` ` +
      "(deno: the deno@2.9.6 binary that npx runs; "
    : `npx --yes deno@2.9.6 task bench quantize ${runDir}\` (`;
  const body = `
Command: \`${command}${new Date().toISOString().slice(0, 10)}, ${
    fixed((performance.now() - started) / 60000, 1)
  } min). Machine: ${mc.cpu}, ${mc.cores} cores; onnxruntime-node ${mc.ort}, CPU execution provider. ONNX Runtime's u8·s8 integer kernels in this process: ${kernels}.

The run's float32 export against \`deno task export --quantize int8\`, \`int8-conv\` and \`int8-static\` of
the same checkpoint (${run.checkpoint}), each with the weights in the exports' format ("${EXPORT_WEIGHT_FORMAT}":
int8 within ±64, depthwise QLinearConv kernels ±127) and, to compare, all within ±64 ("int7", ONNX Runtime's
reduce_range), in the full int8 range ("int8", ±127) and as uint8 with zero point 128 ("uint8", ONNX Runtime's
u8·u8 kernels; \`onnx/quantize.ts\` \`WeightFormat\`; ${
    sameFile.join(", ")
  }: the same file): every parameter matmul becomes
DynamicQuantizeLinear + MatMulInteger; with "int8-conv" every convolution ConvInteger (weights per output column /
channel, activations uint8 per tensor, quantized at run time; \`onnx/quantize.ts\`); with "int8-static" every
convolution in QDQ form, its input and output uint8 with scales calibrated on ${CALIBRATION_IMAGES} training images
(min/max), weights per output channel, biases int32, which ONNX Runtime fuses into QLinearConv / QLinearAdd
(\`onnx/quantize_static.ts\`), the matmuls as in "int8". Attention's activation matmuls, normalization and the
elementwise ops stay float32. Model file: ${
    sides.filter((s) => !s.format || s.format === EXPORT_WEIGHT_FORMAT).map((s) =>
      `${s.label} ${mb(s.bytes)} MB`
    )
      .join(", ")
  }.

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
  console.log(`### ${title}\n${body}`);
  if (quick) return log("--quick: BENCHMARKS.md is left unchanged");
  // One subsection per CPU kind, under "## Reduced precision (export)"; the others are kept.
  const doc = await Deno.readTextFile(BENCHMARKS.pathname).catch(() => "");
  await Deno.writeTextFile(BENCHMARKS.pathname, replaceSubsection(doc, SECTION, title, body));
  await formatGenerated(BENCHMARKS.pathname);
  log(`wrote the "${title}" subsection of "${SECTION}" in ${BENCHMARKS.pathname}`);
};
