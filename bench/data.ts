/**
 * `deno task bench data`: training-pipeline throughput on camvid and coco133, and whether data loading
 * overlaps a blocking training step — recorded in BENCHMARKS.md, section "Data pipeline".
 *
 * Three measurements:
 * 1. images/s of `trainLoader` (batch 8, crops 256 and 512, mmsegmentation defaults otherwise) on the main
 *    thread and with Workers, after two warm-up batches;
 * 2. whether sharp decoding alone overlaps a synchronous busy loop on the main thread;
 * 3. images/s and the batch period while each batch is consumed by a synchronous onnxruntime-node
 *    `session.run` (a hand-built MatMul graph, one intra-op thread) or a busy loop of the same length, on the
 *    main thread and with Workers.
 */
import { Console, Effect, Stream } from "effect";
import sharp from "sharp";
import * as ort from "onnxruntime-node";
import onnxProto from "onnx-proto";
import { cpus } from "node:os";
import { recordSection, table } from "../figures/markdown.ts";
import {
  camvid,
  coco133,
  type DataError,
  type DatasetSpec,
  openDataset,
  trainLoader,
  type TrainPipeline,
  trainPipeline,
} from "../mod.ts";

/** images/s of the training pipeline for one configuration. */
export interface ThroughputRow {
  readonly dataset: string;
  readonly crop: number;
  readonly workers: number;
  readonly concurrency: number;
  readonly imagesPerSecond: number;
}

/** A loader feeding a consumer that blocks the main thread for about `stepMs` per batch. */
export interface OverlapRow {
  readonly consumer: string;
  readonly workers: number;
  /** The step's duration on an otherwise idle machine. */
  readonly stepMs: number;
  /** Mean wall time of the step call while the loader runs (CPU contention and queued loader work show here). */
  readonly stepUnderLoadMs: number;
  /** Mean time from one batch to the next. */
  readonly periodMs: number;
  readonly imagesPerSecond: number;
  /** Share of the loader's own time per batch (from the throughput table) hidden behind the step. */
  readonly hidden: number;
}

/** Sharp decoding alone vs. decoding while the main thread is busy. */
export interface DecodeOverlap {
  readonly images: number;
  readonly decodeMs: number;
  readonly busyMs: number;
  readonly togetherMs: number;
  /** Share of the decoding time hidden behind the busy loop (1 = fully overlapped). */
  readonly overlap: number;
}

export interface DataBenchResult {
  readonly machine: string;
  readonly cores: number;
  readonly batchSize: number;
  readonly measuredBatches: number;
  readonly throughput: readonly ThroughputRow[];
  readonly decodeOverlap: DecodeOverlap;
  readonly stepOverlap: readonly OverlapRow[];
}

const BATCH = 8;
/** Batches consumed before timing starts, so the window sees the loader in its steady state. */
const WARMUP = 4;
/** Each figure is the median of this many runs: timings on a shared VM drift by ±10% between runs. */
const REPEATS = 3;

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const busyWait = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* spin: a stand-in for a synchronous training step */ }
};

/** Consumes `measured` batches after `WARMUP`, calling `step` on each; returns img/s and per-batch times. */
const timeLoader = (
  spec: DatasetSpec,
  crop: number,
  workers: number,
  concurrency: number,
  measured: number,
  step: () => Promise<void>,
) =>
  timePipeline(spec, trainPipeline({ cropSize: [crop, crop] }), BATCH, workers, concurrency, measured, step);

/** `timeLoader` for any training pipeline and batch size. */
const timePipeline = (
  spec: DatasetSpec,
  pipeline: TrainPipeline,
  batchSize: number,
  workers: number,
  concurrency: number,
  measured: number,
  step: () => Promise<void>,
) =>
  Effect.gen(function* () {
    let seen = 0, start = 0, end = 0, inStep = 0;
    const loader = trainLoader(spec, pipeline, {
      batchSize,
      seed: 0,
      workers,
      concurrency,
      prefetch: 2,
    });
    yield* loader.pipe(
      Stream.take(WARMUP + measured),
      Stream.runForEach(() =>
        Effect.promise(async () => {
          if (seen === WARMUP) start = performance.now();
          seen++;
          const t0 = performance.now();
          await step();
          if (seen > WARMUP) inStep += performance.now() - t0;
          end = performance.now();
        })
      ),
    );
    const periodMs = (end - start) / measured;
    return { imagesPerSecond: (batchSize * 1000) / periodMs, periodMs, stepUnderLoadMs: inStep / measured };
  });

/**
 * images/s of `trainLoader` on its own (nothing consumes the batches) for one pipeline and batch size,
 * with `workers` decoding Workers and two batches of samples in flight: the median of `REPEATS` runs of
 * `batches` batches, each after `WARMUP` batches.
 */
export const loaderImagesPerSecond = (
  spec: DatasetSpec,
  pipeline: TrainPipeline,
  batchSize: number,
  workers: number,
  batches = 10,
): Effect.Effect<number, DataError> =>
  Effect.gen(function* () {
    const runs: number[] = [];
    for (let rep = 0; rep < REPEATS; rep++) {
      const r = yield* timePipeline(spec, pipeline, batchSize, workers, 2 * batchSize, batches, () =>
        Promise.resolve());
      runs.push(r.imagesPerSecond);
    }
    return median(runs);
  });

/** A graph of two chained N×N MatMuls, built by hand, as an onnxruntime session with one thread. */
const matmulSession = async (n: number) => {
  const { onnx } = onnxProto as unknown as { onnx: typeof import("onnx-proto").onnx };
  const square = {
    tensorType: {
      elemType: onnx.TensorProto.DataType.FLOAT,
      shape: { dim: [{ dimValue: n }, { dimValue: n }] },
    },
  };
  const model = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "bench-matmul",
      node: [{ opType: "MatMul", input: ["a", "b"], output: ["c"] }, {
        opType: "MatMul",
        input: ["c", "b"],
        output: ["d"],
      }],
      input: [{ name: "a", type: square }, { name: "b", type: square }],
      output: [{ name: "d", type: square }],
    },
  });
  const session = await ort.InferenceSession.create(onnx.ModelProto.encode(model).finish(), {
    intraOpNumThreads: 1,
  });
  const x = new ort.Tensor("float32", new Float32Array(n * n).fill(1 / n), [n, n]);
  return async () => {
    await session.run({ a: x, b: x });
  };
};

/**
 * Decoding with sharp directly (the calls are issued before the main thread blocks, as a loader's would be
 * when a step starts): alone, then beside a synchronous busy loop of the same length.
 */
const decodeOverlap = (files: readonly string[]): Effect.Effect<DecodeOverlap> =>
  Effect.promise(async () => {
    const decodeAll = () => Promise.all(files.map((f) => sharp(f).raw().toBuffer()));
    await decodeAll(); // warm-up
    const runs: DecodeOverlap[] = [];
    for (let rep = 0; rep < REPEATS; rep++) {
      let t = performance.now();
      await decodeAll();
      const decodeMs = performance.now() - t;
      const busyMs = decodeMs;
      t = performance.now();
      const pending = decodeAll();
      busyWait(busyMs);
      await pending;
      const togetherMs = performance.now() - t;
      const overlap = Math.max(0, Math.min(1, (decodeMs + busyMs - togetherMs) / decodeMs));
      runs.push({ images: files.length, decodeMs, busyMs, togetherMs, overlap });
    }
    return [...runs].sort((a, b) => a.overlap - b.overlap)[REPEATS >> 1];
  });

const f1 = (x: number) => x.toFixed(1);
const workersLabel = (w: number) => (w === 0 ? "main thread" : `${w} Worker${w > 1 ? "s" : ""}`);

/** The body of the "Data pipeline" section. */
export const renderData = (r: DataBenchResult): string => {
  const d = r.decodeOverlap;
  const lines = [
    "<!-- data-bench: written by `deno task bench data` (bench/data.ts); edits inside this section are overwritten -->",
    "",
    "Command: `npx --yes deno@2.9.6 task bench data` (calls `benchData()` from `bench/data.ts`).",
    `Machine: ${r.machine}.`,
    "",
    `Training pipeline (\`trainLoader\`, mmsegmentation defaults: random rescale of (2048, 512) by 0.5–2.0, random crop`,
    `with cat max ratio 0.75, flip, photometric distortion, normalize, pad), batch ${r.batchSize}, prefetch 2,`,
    `timed over ${r.measuredBatches} batches after ${WARMUP} warm-up batches, median of ${REPEATS} runs, nothing else running.`,
    "The loader against the images/s a real training step consumes (the quickstart's and the perf model's) is",
    'in "Performance (segmenter) on <CPU>" (`deno task bench perf`); the second table here feeds stand-in steps.',
    "",
    table<ThroughputRow>(
      [
        { header: "dataset", cell: (t) => t.dataset },
        { header: "crop", cell: (t) => String(t.crop) },
        { header: "decode on", cell: (t) => workersLabel(t.workers) },
        { header: "samples in flight", cell: (t) => String(t.concurrency) },
        { header: "images/s", cell: (t) => f1(t.imagesPerSecond) },
      ],
      r.throughput,
      "bare",
    ),
    "",
    "Does loading overlap a step that blocks the main thread? onnxruntime-node's `session.run` runs the graph",
    "synchronously on the main thread (inside a `setImmediate`): no JavaScript, timer or message handler runs",
    `meanwhile. Sharp decoding alone: ${d.images} CamVid JPEGs take ${
      f1(d.decodeMs)
    } ms; issued just before a ` +
    `${f1(d.busyMs)} ms synchronous busy loop they are done ${f1(d.togetherMs)} ms after the start, so ` +
    `${
      Math.round(100 * d.overlap)
    }% of the decoding was hidden: libvips decodes on its own threads, but under ` +
    "Deno only part of a queue of",
    "decodes progresses while the main thread is blocked (the rest waits for the event loop). The rest of the",
    "pipeline (label mapping, crop, flip, photometric distortion, normalization) is JavaScript. Whole loader",
    `(camvid, crop 512, batch ${r.batchSize}) feeding a blocking step:`,
    "",
    table<OverlapRow>(
      [
        { header: "step per batch", cell: (o) => o.consumer },
        { header: "decode on", cell: (o) => workersLabel(o.workers) },
        { header: "step alone ms", cell: (o) => f1(o.stepMs) },
        { header: "images/s the step consumes", cell: (o) => f1((r.batchSize * 1000) / o.stepMs) },
        { header: "step under load ms", cell: (o) => f1(o.stepUnderLoadMs) },
        { header: "batch period ms", cell: (o) => f1(o.periodMs) },
        { header: "images/s", cell: (o) => f1(o.imagesPerSecond) },
        { header: "loader time hidden", cell: (o) => `${Math.round(100 * o.hidden)}%` },
      ],
      r.stepOverlap,
      "bare",
    ),
    "",
    `Median of ${REPEATS} runs, each step re-timed alone just before its run. "Loader time hidden" = 1 − (batch`,
    'period − step alone) / (loader time per batch on its own, from the first table). "Step under load" is the',
    "wall time of the step call while the loader runs: for onnxruntime it also holds loader JavaScript that runs",
    "before the deferred graph starts, and CPU contention with the Workers.",
    "",
    "Finding: on the main thread the JavaScript half of loading waits for the step (little or nothing hidden);",
    "in Workers it runs beside it. The loaders therefore decode in Workers by default (`defaultWorkers()`:",
    "cores − 1, at least 1, at most 4) with two batches of samples in flight, so the Workers have work queued",
    "when a step blocks the main thread. With few cores a compute-bound step slows down when Workers run beside",
    "it: then the cores, not the overlap, are the limit.",
  ];
  return lines.join("\n");
};

/**
 * Measures the training pipeline's images/s on camvid and coco133 and its overlap with a blocking step,
 * prints the tables, records them in BENCHMARKS.md (unless `record: false`) and returns the figures.
 */
export const benchData = (
  options: { readonly record?: boolean; readonly batches?: number } = {},
): Effect.Effect<DataBenchResult, DataError> =>
  Effect.gen(function* () {
    const measured = options.batches ?? 10;
    const cores = navigator.hardwareConcurrency;
    const cpu = cpus()[0]?.model ?? "unknown CPU";
    const machine =
      `${cpu}, ${cores} cores, Deno ${Deno.version.deno}, sharp ${sharp.versions.sharp} / libvips ${sharp.versions.vips}`;

    const throughput: ThroughputRow[] = [];
    for (const [name, spec] of [["camvid", camvid], ["coco133", coco133]] as const) {
      for (const crop of [256, 512]) {
        for (const workers of [0, 1, 2]) {
          const concurrency = 2 * BATCH;
          const runs: number[] = [];
          for (let rep = 0; rep < REPEATS; rep++) {
            const r = yield* timeLoader(spec, crop, workers, concurrency, measured, () => Promise.resolve());
            runs.push(r.imagesPerSecond);
          }
          const imagesPerSecond = median(runs);
          throughput.push({ dataset: name, crop, workers, concurrency, imagesPerSecond });
          yield* Console.log(
            `${name} crop ${crop} ${workersLabel(workers)}: ${f1(imagesPerSecond)} images/s`,
          );
        }
      }
    }

    const train = yield* openDataset(camvid, "train");
    const overlap = yield* decodeOverlap(train.samples.slice(0, 64).map((s) => s.image));
    yield* Console.log(
      `sharp decode hidden behind a busy main thread: ${Math.round(100 * overlap.overlap)}%`,
    );

    const matmul = yield* Effect.promise(() => matmulSession(1448));
    const timeStep = (step: () => Promise<void>) =>
      Effect.promise(async () => {
        await step(); // warm-up
        const t = performance.now();
        for (let i = 0; i < 3; i++) await step();
        return (performance.now() - t) / 3;
      });
    const busyMs = yield* timeStep(matmul);
    const stepOverlap: OverlapRow[] = [];
    for (
      const [consumer, step] of [
        ["onnxruntime-node `session.run` (two 1448² MatMuls, 1 thread)", matmul],
        ["synchronous busy loop", () => Promise.resolve(busyWait(busyMs))],
      ] as const
    ) {
      for (const workers of [0, 1, 2]) {
        const alone = throughput.find((x) =>
          x.dataset === "camvid" && x.crop === 512 && x.workers === workers
        )!;
        const loaderMs = (BATCH * 1000) / alone.imagesPerSecond;
        const runs: OverlapRow[] = [];
        for (let rep = 0; rep < REPEATS; rep++) {
          // The step is re-timed next to each run: the VM's speed drifts between runs.
          const stepMs = yield* timeStep(step);
          const r = yield* timeLoader(camvid, 512, workers, 2 * BATCH, measured, step);
          const hidden = Math.max(0, Math.min(1, 1 - (r.periodMs - stepMs) / loaderMs));
          runs.push({ consumer, workers, stepMs, ...r, hidden });
        }
        const row = [...runs].sort((a, b) => a.imagesPerSecond - b.imagesPerSecond)[REPEATS >> 1];
        stepOverlap.push(row);
        yield* Console.log(
          `${consumer}, ${workersLabel(workers)}: ${f1(row.imagesPerSecond)} images/s, period ${
            f1(row.periodMs)
          } ms ` +
            `(step ${f1(row.stepMs)} ms alone, ${f1(row.stepUnderLoadMs)} ms under load), ${
              Math.round(100 * row.hidden)
            }% hidden`,
        );
      }
    }

    const result: DataBenchResult = {
      machine,
      cores,
      batchSize: BATCH,
      measuredBatches: measured,
      throughput,
      decodeOverlap: overlap,
      stepOverlap,
    };
    const section = renderData(result);
    yield* Console.log(`\n## Data pipeline\n\n${section}`);
    if (options.record ?? true) {
      yield* Effect.promise(() => recordSection("BENCHMARKS.md", "Data pipeline", section));
    }
    return result;
  });
