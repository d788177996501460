/**
 * `deno task bench frozen`: the quickstart's training step on a frozen backbone against its fine-tuning
 * step, on the same CPU in alternating rounds: fine-tuning (`experiments/quickstart.ts`), the frozen
 * backbone run every step (no backward through it), and the head alone on the backbone's cached outputs
 * (`experiments/quickstart-frozen.ts`, 8 draws). Also the feature cache's build time and size (from its
 * manifest; built first if missing) and the time to read a batch's rows from it. Each step is one
 * `session.run` on real batches (CamVid crops through the training pipeline; cached rows); medians over
 * the rounds. The outside load (other processes' busy cores, from /proc) and the 1-minute load average
 * (`uptime`'s) are recorded with the figures. Rewrites BENCHMARKS.md's "Frozen backbone (feature cache)".
 *
 *   --rounds=N      alternating rounds (default 5); --steps=N timed steps per side and round (default 5)
 *   --threads=1,2   the intra-op thread counts measured, each side at each (default 1,2; the run of --train
 *                   uses the last)
 *   --rebuild       build the cache afresh in a temporary folder (removed afterwards), to time its build
 *                   now; by default the cache under runs/.feature-cache is used (built first if missing)
 *   --train         also train experiments/quickstart-frozen.ts end to end (500 steps, 4 evaluations) into
 *                   a temporary folder and report its wall time and mIoU
 *   --quick         one round of 2 steps; BENCHMARKS.md is left unchanged
 */
import { Effect, Stream } from "effect";
import os from "node:os";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import quickstart from "../experiments/quickstart.ts";
import quickstartFrozen from "../experiments/quickstart-frozen.ts";
import {
  type BackboneMode,
  cachedTrainLoader,
  describeTraining,
  ensureFeatureCache,
  execute,
  type Executor,
  type Experiment,
  type FeatureBatch,
  featureGraph,
  featureName,
  openDataset,
  optimizerConfig,
  plan,
  pretrainedValues,
  train,
  trainingStages,
  trainLoader,
  trainShapes,
  type Value,
  value,
} from "../mod.ts";
import { machine } from "./machine.ts";
import { averageLoad, type Load, withLoad } from "./load.ts";
import { formatSpread, recordSection, table } from "../figures/markdown.ts";
import { summarize, type Summary } from "../figures/stats.ts";

export const SECTION = "Frozen backbone (feature cache)";

const log = (line: string) => console.error(`bench frozen: ${line}`);

const flag = (args: readonly string[], name: string) =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

const SIDES: readonly { mode: BackboneMode; e: Experiment; name: string }[] = [
  { mode: "trained", e: quickstart, name: "fine-tuning (experiments/quickstart.ts)" },
  { mode: "frozen", e: quickstartFrozen, name: "frozen backbone, run every step" },
  { mode: "cached", e: quickstartFrozen, name: "head only, features from the cache" },
];

const scalar = (x: number) => value("float32", Float32Array.of(x), []);

/** One side's executor, started from the pretrained backbone, and its batches' feeds. */
const openSide = (mode: BackboneMode, e: Experiment, threads: number | undefined) =>
  Effect.gen(function* () {
    const { graph, stages } = trainingStages(
      e.model,
      trainShapes(e),
      optimizerConfig(e.train),
      undefined,
      mode,
    );
    const p = plan(mode, graph, stages);
    const ex = yield* execute(p, { seed: e.train.seed, threads });
    for (const [n, v] of yield* pretrainedValues(e.model, p)) {
      ex.state.set(n, value("float32", v.data, v.shape));
    }
    return ex;
  });

const oneMinuteLoad = () => os.loadavg()[0];

export const main = async (args: string[]): Promise<void> => {
  const quick = args.includes("--quick");
  const rounds = quick ? 1 : Number(flag(args, "rounds") ?? 5);
  const steps = quick ? 2 : Number(flag(args, "steps") ?? 5);
  const threadCounts = (flag(args, "threads") ?? "1,2").split(",").map(Number);
  const threads = threadCounts.at(-1)!;
  const e = quickstartFrozen;
  const shapes = trainShapes(e);
  const m = machine();
  const rebuild = args.includes("--rebuild");
  const cacheRoot = rebuild ? await mkdtemp(join(tmpdir(), "kappa-bench-cache-")) : undefined;
  log(`${m.cpu}, ${m.cores} cores; load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);

  const figures = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    // The cache: found under its key, or built now (its manifest records the build either way).
    const features = featureGraph(e.model, shapes)!;
    const weights = yield* pretrainedValues(e.model, features);
    const backbone = new Map<string, Value>(
      [...weights].map(([n, v]) => [n, value("float32", v.data, v.shape)]),
    );
    const dataset = yield* openDataset(e.data.dataset, e.data.dataset.trainSplit);
    const { cache, use } = yield* ensureFeatureCache({
      e,
      features,
      backbone,
      dataset,
      panoptic: false,
      threads,
      print: log,
      ...(cacheRoot ? { root: cacheRoot } : {}),
    });
    log(`cache ${use.dir}: ${(use.bytes / 1e6).toFixed(1)} MB, built in ${use.buildSeconds.toFixed(1)} s`);
    // Batches: every side gets real ones (its own loader), collected before anything is timed.
    const batches = steps + 1;
    const images = yield* Stream.runCollect(
      trainLoader(e.data.dataset, e.data.train, { batchSize: e.train.batchSize, seed: 0 }).pipe(
        Stream.take(batches),
      ),
    );
    const readMs: number[] = [];
    const cached: FeatureBatch[] = [];
    {
      // Without prefetch the loader reads a batch's rows when it is pulled: the time between batches.
      let t = performance.now();
      yield* Stream.runForEach(
        cachedTrainLoader(cache, { batchSize: e.train.batchSize, seed: 0, prefetch: 0 }).pipe(
          Stream.take(batches),
        ),
        (b) =>
          Effect.sync(() => {
            readMs.push(performance.now() - t);
            cached.push(b);
            t = performance.now();
          }),
      );
    }
    const feedsOf = (mode: BackboneMode, i: number): Record<string, Value> => {
      const common = { lr: scalar(1e-4), step: scalar(i + 1) };
      if (mode === "cached") {
        const b = cached[i % batches];
        return {
          ...Object.fromEntries(
            b.features.map((f, k) => [featureName(k), value("float32", f.data, f.shape)]),
          ),
          labels: value("int32", b.labels, [b.batchSize, b.height, b.width]),
          ...common,
        };
      }
      const b = images[i % batches];
      return {
        images: value("float32", b.images, [b.batchSize, 3, b.height, b.width]),
        labels: value("int32", b.labels, [b.batchSize, b.height, b.width]),
        ...common,
      };
    };
    // Every side at every thread count, one executor each, measured in turn within each round.
    const cells = threadCounts.flatMap((t) =>
      SIDES.map((s) => ({ ...s, threads: t, key: `${s.mode}@${t}` }))
    );
    const executors = new Map<string, Executor>();
    for (const c of cells) {
      const ex = yield* openSide(c.mode, c.e, c.threads);
      yield* ex.run(feedsOf(c.mode, 0)); // first run: ONNX Runtime's allocations, not timed
      executors.set(c.key, ex);
    }
    const times = new Map<string, number[]>(cells.map((c) => [c.key, []]));
    const loads: Load[] = [];
    const averages: number[] = [oneMinuteLoad()];
    for (let r = 0; r < rounds; r++) {
      for (const c of cells) {
        const ex = executors.get(c.key)!;
        const { load } = yield* Effect.promise(() =>
          withLoad(async () => {
            for (let i = 1; i <= steps; i++) {
              const feeds = feedsOf(c.mode, i);
              const t = performance.now();
              await Effect.runPromise(ex.run(feeds));
              times.get(c.key)!.push(performance.now() - t);
            }
          })
        );
        loads.push(load);
      }
      averages.push(oneMinuteLoad());
      log(
        `round ${r + 1}/${rounds}: ${
          cells.map((c) => `${c.key} ${summarize(times.get(c.key)!).median.toFixed(1)} ms`).join(", ")
        }; outside load ${averageLoad(loads.slice(-cells.length)).toFixed(2)} cores`,
      );
    }
    return {
      steps: cells.map((c) => ({ ...c, ms: summarize(times.get(c.key)!) })),
      readMs: summarize(readMs),
      use,
      build: cache.manifest.build,
      outsideLoad: averageLoad(loads),
      loadAverages: averages,
    };
  }))).finally(() => cacheRoot ? rm(cacheRoot, { recursive: true, force: true }) : undefined);

  let trained: { seconds: number; headline: string; built?: number; loads: number[] } | undefined;
  if (args.includes("--train")) {
    const out = await mkdtemp(join(tmpdir(), "kappa-bench-frozen-"));
    try {
      const t = performance.now(), before = oneMinuteLoad();
      const r = await Effect.runPromise(train(quickstartFrozen, { out, threads, print: log }));
      // The run builds the cache under runs/.feature-cache first when it is missing (e.g. after --rebuild
      // timed a build elsewhere): its build is not training time.
      const record = JSON.parse(await readFile(join(r.runDir, "feature-cache.json"), "utf8"));
      trained = {
        seconds: (performance.now() - t) / 1000,
        headline: r.headline ? `${r.headline.name} ${r.headline.value.toFixed(2)}` : "–",
        ...(record.built ? { built: record.buildSeconds as number } : {}),
        loads: [before, oneMinuteLoad()],
      };
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }

  const d = describeTraining(quickstartFrozen)!;
  const gflops = new Map(d.steps.map((s) => [s.mode, s.gflops]));
  const base = (t: number) => figures.steps.find((s) => s.threads === t && s.mode === "trained")!.ms.median;
  const rows = figures.steps.map((s) => ({ ...s, gflops: gflops.get(s.mode)! }));
  const text = [
    `Quickstart model (MobileNetV2 to output stride 16 + RankSeg head, ${shapes.height}×${shapes.width} crops, ` +
    `batch ${shapes.batch}), one training step = one \`session.run\` (forward, backward, AdamW update) on real ` +
    `batches; ${rounds} alternating rounds of ${steps} steps per side and thread count, median (p10–p90) of ` +
    "all; the speed-up is against fine-tuning at the same thread count.",
    "",
    table<typeof rows[number] & { ms: Summary }>([
      { header: "step", cell: (r) => r.name },
      { header: "threads", cell: (r) => String(r.threads) },
      { header: "GFLOPs / crop", cell: (r) => r.gflops.toFixed(3) },
      { header: "ms / step", cell: (r) => formatSpread(r.ms) },
      { header: "speed-up", cell: (r) => `${(base(r.threads) / r.ms.median).toFixed(1)}×` },
    ], rows),
    "",
    `Feature cache (${rebuild ? "built afresh in a temporary folder" : `\`${figures.use.dir}\``}): ` +
    `${figures.use.draws} draws × ${figures.use.samples} CamVid training ` +
    `frames, float16, ${(figures.use.bytes / 1e6).toFixed(1)} MB (${
      (figures.use.bytes / (figures.use.draws * figures.use.samples) / 1e3).toFixed(1)
    } kB per frame and draw: the 320 × 11 × 15 stride-16 map and the 176 × 240 labels); built in ` +
    `${figures.use.buildSeconds.toFixed(1)} s (${figures.build.createdAt}${
      figures.use.built ? ", by this run" : ", by an earlier run"
    }${
      figures.build.loadAverage
        ? `, 1-minute load average ${figures.build.loadAverage.map((l) => l.toFixed(1)).join(" → ")}`
        : ""
    }); reading a batch's 4 rows: ${formatSpread(figures.readMs)} ms.`,
    ...(trained
      ? [
        "",
        `\`train experiments/quickstart-frozen.ts --threads ${threads}\` end to end (500 steps, 4 evaluations of ` +
        `the 101 val frames by the whole model): ${
          trained.built === undefined
            ? `${(trained.seconds / 60).toFixed(1)} min with the cache present`
            : `${((trained.seconds - trained.built) / 60).toFixed(1)} min after building the cache first (` +
              `${trained.built.toFixed(1)} s; ${(trained.seconds / 60).toFixed(1)} min in all)`
        }, ${trained.headline}; 1-minute load average ${trained.loads.map((l) => l.toFixed(1)).join(" → ")}.`,
      ]
      : []),
  ].join("\n");
  console.log(text);
  const loadLine = `outside load ${figures.outsideLoad.toFixed(2)} cores on average while timing; 1-minute ` +
    `load average ${Math.min(...figures.loadAverages).toFixed(1)}–${
      Math.max(...figures.loadAverages).toFixed(1)
    }`;
  console.log(loadLine);
  if (quick) return;
  const cmd = `deno task bench frozen ${args.join(" ")}`.trim();
  await recordSection(
    "BENCHMARKS.md",
    SECTION,
    `Measured by \`${cmd}\` on ${m.cpu} (${m.cores} cores), onnxruntime-node ${m.ort}, ` +
      `${new Date().toISOString().slice(0, 10)}; ${loadLine}.\n\n${text}`,
  );
};
