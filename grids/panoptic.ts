/**
 * `deno task grid panoptic [--seeds 3] [--steps N] [--frozen-backbone D] [--only REGEX] [--report-only]`: the ReMaX grid on
 * coco133 (`experiments/panoptic/coco133-*.ts`: baseline, + ReMask, + ReClass, ReMaX, + RankSeg queries),
 * every row for every seed, evaluated by PQ; writes the "Panoptic segmentation on coco133" section of
 * RESULTS.md (PQ / PQ_th / PQ_st / mIoU mean ± std, training step time, inference time, the papers'
 * claims beside ours, findings against the seed spread, the trivial predictor) and
 * results/panoptic-coco133.svg. Resumable: a run with its eval record is skipped, an interrupted one
 * resumes from its checkpoint; `--slurm` submits the runs as a Slurm job array and this report as a job
 * after it (grids/slurm/). Budget: 5 rows × 3 seeds ≈ 40 minutes of the idle 2-core machine as two
 * `--threads 1` processes (grid.ts, STEPS, has the measurement).
 *
 * `deno task grid panoptic step`: one training step split into its stages (cost graph, Hungarian matching
 * on the host, loss + update graph) for the baseline and ReMaX rows, on a real coco133 batch; writes the
 * "Panoptic training step" section of BENCHMARKS.md.
 *
 * `deno task grid panoptic diagnose RUN [--batches N] [--checkpoint FILE]`: what a trained run's class head
 * does on training batches (the numbers behind grid.ts's comment on merging's thresholds).
 */
import { Effect, Stream } from "effect";
import { readdirSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  execute,
  type Experiment,
  graphStage,
  inferenceShapes,
  loadExperiment,
  loadRun,
  openDataset,
  optimizerConfig,
  panoptic,
  panopticKind,
  plan,
  requireKind,
  trainingStages,
  trainLoader,
  trainShapes,
  trivialPanopticQuality,
  type Value,
  value,
} from "../mod.ts";
import { type HostStage, matchingStage, panopticTargets, stackTargets } from "../profiling.ts";
import { barChart } from "./bar_chart.ts";
import { fixed, formatGenerated, recordSection, table } from "../figures/markdown.ts";
import {
  type Diagnostics,
  panopticFindings,
  panopticLikelyCauses,
  rowLabel,
  ROWS,
} from "./panoptic_findings.ts";
import {
  finishedRun,
  gridFlags,
  type GridRun,
  overrideFlags,
  protocolTitle,
  seedRun,
  withGridFrozen,
} from "./grid_runs.ts";
import { slurmRequested } from "./slurm/slurm_flags.ts";
import { submitGrid } from "./slurm/submit.ts";
import { flag } from "../figures/flags.ts";
import { mean, std, summarize } from "../figures/stats.ts";

const SPECS = "experiments/panoptic";
const RUNS = "runs/panoptic";
const TITLE = "Panoptic segmentation on coco133 (ReMaX, RankSeg queries)";
/** The grid's plot; a frozen-backbone grid's sits beside the fine-tuning one. */
const panopticSvg = (frozenBackbone: number | undefined) =>
  `results/panoptic-coco133${frozenBackbone === undefined ? "" : "-frozen"}.svg`;

const ORDER = Object.keys(ROWS);

/** `inference` and `stepMs`: measured when the section is written (2 threads), not during training. */
type RowResult = {
  row: string;
  e: Experiment;
  runs: RunResult[];
  /** Seed 0's run folder, when that run is finished (the likely causes quote its diagnostics). */
  seed0?: string;
  inference: number;
  stepMs: number;
};

interface RunResult {
  readonly pq: number;
  readonly pqTh: number;
  readonly pqSt: number;
  readonly mIoU: number;
  /** Seconds per training step (batch / images per second, averaged over the logged intervals). */
  readonly stepSeconds: number;
  /** Merging's class thresholds (thing / stuff) chosen on the training split, when calibrated. */
  readonly thresholds?: string;
}

const readRun = (dir: string, split: string, batch: number): RunResult => {
  const r = JSON.parse(readFileSync(join(dir, `eval-${split}.json`), "utf8"));
  const rates = readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l))
    .filter((m) => m.kind === "train").map((m) => batch / m.imagesPerSecond);
  return {
    pq: r.pq.all.pq,
    pqTh: r.pq.things.pq,
    pqSt: r.pq.stuff.pq,
    mIoU: r.segmentation.mIoU,
    stepSeconds: mean(rates),
    thresholds: r.calibration
      ? `${r.calibration.thingThreshold} / ${r.calibration.stuffThreshold}`
      : undefined,
  };
};

/**
 * Median ms of each experiment's inference graph on one 128×128 image (random parameters: the cost, not
 * the output), 2 threads: 3 rounds with the rows' order rotated, each row a fresh session per round with
 * 2 warm-up and 10 timed runs. Measured once one after the other, the first row took twice as long as the
 * later ones with the same graph; with all sessions alive at once, each waited on the others' idle
 * spinning threads (18 vs 14 ms for the same graph).
 */
const inferenceMs = async (experiments: readonly Experiment[]): Promise<number[]> => {
  const cases = experiments.map((e) => {
    const model = Effect.runSync(requireKind(e, panopticKind, "grid panoptic")).model;
    const shapes = inferenceShapes(e, 1), { height: h, width: w } = shapes;
    return {
      g: panoptic.inferenceGraph(model, shapes),
      images: value("float32", new Float32Array(3 * h * w).fill(0.1), [1, 3, h, w]),
    };
  });
  const times = experiments.map((): number[] => []);
  for (let round = 0; round < 3; round++) {
    for (let j = 0; j < cases.length; j++) {
      const i = (j + round) % cases.length;
      const { g, images } = cases[i];
      await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
        const ex = yield* execute(plan("inference", g, [graphStage(g)]), { threads: 2 });
        for (let run = 0; run < 12; run++) {
          const t0 = performance.now();
          yield* ex.run({ images });
          if (run >= 2) times[i].push(performance.now() - t0);
        }
      })));
    }
  }
  return times.map((t) => summarize(t).median);
};

/** Each experiment's training step (ms, the sum of its stages), rows alternated over 3 rounds: the median. */
const stepMs = async (experiments: readonly Experiment[]): Promise<number[]> => {
  const rounds = experiments.map((): number[] => []);
  for (let round = 0; round < 3; round++) {
    for (const [i, e] of experiments.entries()) {
      rounds[i].push((await stepParts(e)).reduce((a, c) => a + c, 0));
    }
  }
  return rounds.map((r) => summarize(r).median);
};

const grid = async (args: string[]) => {
  const { seeds, steps, frozenBackbone, only, reportOnly } = gridFlags();
  const files = readdirSync(SPECS).filter((f) => /^coco133-.*\.ts$/.test(f) && only.test(f))
    .sort((a, b) => ORDER.indexOf(a.slice(8, -3)) - ORDER.indexOf(b.slice(8, -3)));
  const planned: { file: string; base: Experiment; runs: GridRun[] }[] = [];
  for (const file of files) {
    const path = join(SPECS, file);
    const base = withGridFrozen(await Effect.runPromise(loadExperiment(path)), frozenBackbone);
    const runs = Array.from(
      { length: seeds },
      (_, seed) => seedRun(RUNS, path, base, { steps, frozenBackbone }, seed),
    );
    planned.push({ file, base, runs });
  }
  if (slurmRequested()) return await submitGrid("panoptic", args, RUNS, planned.flatMap((p) => p.runs));
  const measured: Omit<RowResult, "inference" | "stepMs">[] = [];
  for (const { file, base, runs: seedRuns } of planned) {
    const runs: RunResult[] = [];
    let seed0: string | undefined;
    for (const run of seedRuns) {
      if (await Effect.runPromise(finishedRun(run, reportOnly)) === undefined) continue;
      runs.push(readRun(run.dir, base.data.dataset.testSplit, base.train.batchSize));
      if (run.seed === 0) seed0 = run.dir;
    }
    measured.push({ row: file.slice(8, -3), e: base, runs, seed0 });
  }
  const inference = await inferenceMs(measured.map((r) => r.e));
  const step = await stepMs(measured.map((r) => r.e));
  const rows: RowResult[] = measured.map((r, i) => ({ ...r, inference: inference[i], stepMs: step[i] }));
  const first = rows[0]?.e;
  if (!first) throw new Error(`no spec in ${SPECS} matches --only`);
  const classes =
    (await Effect.runPromise(openDataset(first.data.dataset, first.data.dataset.testSplit))).classes;
  const trivial = await Effect.runPromise(
    trivialPanopticQuality(first.data.dataset, classes, first.data.dataset.trainSplit),
  );
  // The likely causes quote the class head and ReMask's gate of the baseline's and ReMask's first seeds.
  const diagnosticsOf = async (row: string) => {
    const dir = rows.find((r) => r.row === row)?.seed0;
    return dir ? (await diagnostics(dir, 8)).totals : undefined;
  };
  const diag = { baseline: await diagnosticsOf("baseline"), remask: await diagnosticsOf("remask") };
  await writeSection(rows, trivial, seeds, steps, diag, frozenBackbone);
};

const writeSection = async (
  rows: RowResult[],
  trivial: { className: string; pq: number },
  seeds: number,
  steps: number | undefined,
  diagnostics: { baseline?: Diagnostics; remask?: Diagnostics },
  frozenBackbone?: number,
) => {
  const pm = (xs: number[]) => xs.length ? `${fixed(100 * mean(xs), 2)} ± ${fixed(100 * std(xs), 2)}` : "–";
  const body = [
    `Written by \`deno task grid panoptic --seeds ${seeds}${overrideFlags({ steps, frozenBackbone })}\` on ${
      new Date().toISOString().slice(0, 10)
    }: ${steps ?? rows[0].e.train.steps} steps at batch ${
      rows[0].e.train.batchSize
    }, 128×128 crops, pretrained ` +
    "MobileNetV2, 32 queries, 2 decoder layers, kMaX's loss weights (3.0 / 0.3 / 1.0); PQ on the 100 " +
    "coco133 val images (percent, mean ± std over seeds). Trivial predictor: every pixel one segment of " +
    `the most frequent stuff class in training ("${trivial.className}"): PQ ${fixed(100 * trivial.pq, 2)}. ` +
    '"step ms" and "inference ms" are measured when this section is written, at 2 threads, rows ' +
    "alternated (a training step on a real batch: median over 3 rounds of the median of 6 steps after 2 " +
    'warm-up steps; one 128×128 image: median of 3 rounds × 10 runs, each after 2 warm-up runs); "s / step in the ' +
    "runs\" is the grid runs' own wall time per step at 1 thread, with other grid processes sharing the cores.",
    "",
    table<RowResult>(
      [
        { header: "row", cell: (r) => rowLabel(r.row) },
        { header: "seeds", cell: (r) => String(r.runs.length) },
        { header: "PQ", cell: (r) => pm(r.runs.map((x) => x.pq)) },
        { header: "PQ_th", cell: (r) => pm(r.runs.map((x) => x.pqTh)) },
        { header: "PQ_st", cell: (r) => pm(r.runs.map((x) => x.pqSt)) },
        { header: "mIoU", cell: (r) => pm(r.runs.map((x) => x.mIoU)) },
        {
          header: "class thresholds (chosen on train)",
          cell: (r) => r.runs.map((x) => x.thresholds ?? "spec").join(", ") || "–",
        },
        { header: "step ms", cell: (r) => fixed(r.stepMs, 1) },
        { header: "s / step in the runs", cell: (r) => fixed(mean(r.runs.map((x) => x.stepSeconds)), 2) },
        { header: "inference ms", cell: (r) => fixed(r.inference, 1) },
        { header: "paper", cell: (r) => ROWS[r.row]?.paper ?? "—" },
      ],
      rows,
      "plain",
    ),
    "",
    "Findings (a difference counts when it exceeds twice the larger seed std of the two rows):",
    "",
    ...panopticFindings(rows, trivial.pq),
    "",
    "Likely causes:",
    "",
    ...panopticLikelyCauses(rows, diagnostics, {
      steps: steps ?? rows[0].e.train.steps,
      batch: rows[0].e.train.batchSize,
    }),
    "",
    `![PQ per row](${panopticSvg(frozenBackbone)})`,
  ].join("\n");
  await mkdir("results", { recursive: true });
  await writeFile(
    panopticSvg(frozenBackbone),
    barChart(
      "PQ on coco133 val (mean ± std over seeds); line: trivial predictor",
      rows.map((r) => ({
        label: rowLabel(r.row),
        mean: 100 * mean(r.runs.map((x) => x.pq)),
        std: 100 * std(r.runs.map((x) => x.pq)),
      })),
      100 * trivial.pq,
    ),
  );
  await formatGenerated(panopticSvg(frozenBackbone));
  // A frozen-backbone grid writes a part of its own: the fine-tuning part stays as the control.
  await recordSection("RESULTS.md", protocolTitle(TITLE, frozenBackbone), body, 1);
};

/** A timing mark between stages: a host stage with no outputs that records when it ran. */
const mark = (times: number[]): HostStage => ({
  _tag: "HostStage",
  name: "mark",
  outputs: [],
  run: () => Effect.sync(() => (times.push(performance.now()), {})),
});

/**
 * One training step of `e` split into its stages on a real coco133 batch, 2 threads: the medians (ms) of
 * the cost graph, the Hungarian matching on the host, and the loss + update graph, over 6 steps after 2
 * warm-up steps.
 */
const stepParts = async (e: Experiment): Promise<[number, number, number]> => {
  const model = Effect.runSync(requireKind(e, panopticKind, "grid panoptic step")).model;
  const shapes = trainShapes(e), { batch: b, height, width } = shapes;
  const { graph, stages } = trainingStages(model, shapes, optimizerConfig(e.train));
  const times: number[] = [];
  const timed = [mark(times), stages[0], mark(times), stages[1], mark(times), stages[2], mark(times)];
  const batch = (await Effect.runPromise(Stream.runCollect(
    trainLoader(e.data.dataset, e.data.train, { batchSize: b, seed: 0, workers: 0, panoptic: true })
      .pipe(Stream.take(1)),
  )))[0];
  const m = panoptic.maxMasks(model);
  const stacked = stackTargets(
    batch.panoptic!.map((s) => panopticTargets(s.segmentIds, s.segments, { maxMasks: m })),
    model.classes,
  );
  const dims = [b, height, width];
  const feeds: Record<string, Value> = {
    images: value("float32", batch.images, [b, 3, height, width]),
    labels: value("int32", Int32Array.from(stacked.semantic, Number), dims),
    maskIds: value("int64", stacked.maskIds, dims),
    maskClasses: value("int64", stacked.classes, [b, m]),
    maskCounts: value("int64", stacked.counts, [b]),
    lr: value("float32", Float32Array.of(1e-4), []),
    step: value("float32", Float32Array.of(1), []),
  };
  return await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(plan("step", graph, timed), { threads: 2 });
    const cost: number[] = [], match: number[] = [], loss: number[] = [];
    for (let i = 0; i < 8; i++) {
      times.length = 0;
      yield* ex.run(feeds);
      if (i < 2) continue; // warm-up
      cost.push(times[1] - times[0]), match.push(times[2] - times[1]), loss.push(times[3] - times[2]);
    }
    const [c, h, l] = [cost, match, loss].map((t) => summarize(t).median);
    return [c, h, l] as [number, number, number];
  })));
};

const step = async () => {
  const lines: string[] = [];
  for (const row of ["baseline", "remax"]) {
    const parts = await stepParts(await Effect.runPromise(loadExperiment(join(SPECS, `coco133-${row}.ts`))));
    const total = parts.reduce((a, c) => a + c, 0);
    lines.push(
      `| ${row} | ${parts.map((p) => `${fixed(p, 1)} (${fixed((100 * p) / total, 1)} %)`).join(" | ")} | ${
        fixed(total, 1)
      } |`,
    );
    console.log(lines.at(-1));
  }
  const body = [
    "Written by `deno task grid panoptic step`: one training step of the coco133 grid's model (batch 4, " +
    "128×128, 32 queries, pretrained MobileNetV2), 2 threads, median of 6 steps after 2 warm-up steps, ms. " +
    "The forward is recomputed in the loss graph (interpret/panoptic.ts says why), so the cost graph is the " +
    "price of a second forward; the Hungarian matching itself runs on the host.",
    "",
    "| row | cost graph | Hungarian matching (host) | loss + update graph | step |",
    "| --- | --- | --- | --- | --- |",
    ...lines,
  ].join("\n");
  await recordSection("BENCHMARKS.md", "Panoptic training step (cost / matching / loss + update)", body);
};

/**
 * `deno task grid panoptic diagnose RUN [--batches N] [--checkpoint FILE]`: what the class head of a
 * trained panoptic run does on N training batches (default 8; seed 0): the share of matched queries, their
 * probability of the matched class, their confidence (best non-void class), the void probability of the
 * unmatched ones, and the PQ-style class term's weights on each (α·dice, (1 − α)·void ratio). Means over
 * the batches; the numbers behind grid.ts's STEPS comment.
 */
const diagnose = async (args: string[]) => {
  const dir = args.find((a, i) => !a.startsWith("--") && !args[i - 1]?.startsWith("--"));
  if (!dir) throw new Error("grid panoptic diagnose: give a run folder");
  const { step, batches, batch, totals } = await diagnostics(
    dir,
    Number(flag("batches") ?? 8),
    flag("checkpoint"),
  );
  console.log(`${dir} (step ${step}), ${batches} training batches of ${batch}:`);
  for (const [name, v] of totals) console.log(`  ${name.padEnd(22)} ${v.toFixed(4)}`);
};

/** The diagnostics' means over `batches` training batches (seed 0) of a trained run. */
const diagnostics = async (dir: string, batches: number, checkpoint?: string) => {
  const run = await Effect.runPromise(loadRun(dir, checkpoint));
  const e = run.experiment;
  const model = Effect.runSync(requireKind(e, panopticKind, "grid panoptic diagnose")).model;
  const shapes = trainShapes(e), { batch: b, height, width } = shapes;
  const g = panoptic.diagnosticsGraph(model, shapes);
  const stages = [
    graphStage(panoptic.costGraph(model, shapes), { name: "cost" }),
    matchingStage({
      costs: panoptic.COSTS,
      counts: panoptic.MASK_COUNTS,
      index: panoptic.MATCHED_INDEX,
      matrix: panoptic.MATCHING,
    }),
    graphStage(g, { name: "diagnostics" }),
  ];
  const m = panoptic.maxMasks(model);
  const loaded = await Effect.runPromise(Stream.runCollect(
    trainLoader(e.data.dataset, e.data.train, { batchSize: b, seed: 0, workers: 0, panoptic: true })
      .pipe(Stream.take(batches)),
  ));
  const totals = new Map<string, number>();
  await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(plan("diagnose", g, stages), { threads: 1 });
    for (const name of ex.state.keys()) {
      const v = run.state.get(name);
      if (v) ex.state.set(name, v);
    }
    for (const batch of loaded) {
      const stacked = stackTargets(
        batch.panoptic!.map((s) => panopticTargets(s.segmentIds, s.segments, { maxMasks: m })),
        model.classes,
      );
      const dims = [b, height, width];
      const out = yield* ex.run({
        images: value("float32", batch.images, [b, 3, height, width]),
        labels: value("int32", Int32Array.from(stacked.semantic, Number), dims),
        maskIds: value("int64", stacked.maskIds, dims),
        maskClasses: value("int64", stacked.classes, [b, m]),
        maskCounts: value("int64", stacked.counts, [b]),
      });
      for (const [name, v] of out) {
        if (!name.startsWith(panoptic.DIAGNOSTICS)) continue;
        const key = name.slice(panoptic.DIAGNOSTICS.length);
        totals.set(key, (totals.get(key) ?? 0) + (v.data[0] as number) / loaded.length);
      }
    }
  })));
  return { step: run.step, batches: loaded.length, batch: b, totals: totals as Diagnostics };
};

export const main = async (args: string[]) => {
  if (args[0] === "step") return await step();
  if (args[0] === "diagnose") return await diagnose(args.slice(1));
  return await grid(args);
};
