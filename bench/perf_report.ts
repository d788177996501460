/**
 * The figures of `deno task bench perf` and their Markdown rendering (printed, and written as the
 * "Performance (segmenter)" section of BENCHMARKS.md). Pure: everything measured comes in as data.
 */
import type { Machine } from "./machine.ts";
import type { Repeats } from "./measure.ts";
import type { StepFlops } from "./mlp.ts";
import type { InferenceProfile, StepProfile } from "./profile.ts";
import { type GraphOps, notableOps } from "./optimized_graph.ts";
import {
  FIRST_LOSS_TOLERANCE,
  loadColumn,
  lossTable,
  sideBySideColumns,
  STEPS_LOSS_TOLERANCE,
  threadsColumn,
} from "./comparison.ts";
import { QUIET_LOAD } from "./load.ts";
import { againstBest, PEER_GOALS, type PeersFigures, renderPeers, type SideThread } from "./peers_report.ts";
import {
  type Column,
  fixed,
  formatMs as ms,
  formatPercent as pct,
  formatRelative as rel,
  formatSpread as spread,
  table,
} from "../figures/markdown.ts";
import { gflops, type Summary } from "../figures/stats.ts";
import { type HeadVariant, VARIANT_LABEL } from "./vocab.ts";

export const COMMAND = "npx --yes deno@2.9.6 task bench perf";

/** The issue's goals. */
export const GOALS = {
  /** Training step time, ours / PyTorch, at most. */
  train: 0.8,
  /** Inference latency of one image, ours / PyTorch, at most. */
  infer: 0.5,
  /** Model FLOP utilisation at one thread, at least. */
  mfu: 0.5,
  /** Model FLOP utilisation at two threads or more, at least (issue 27: the ViT at T = 2). */
  mfuThreaded: 0.7,
  /** Training step at T = 1 ÷ at T = 2, at least (issue 27). */
  speedUp: 1.5,
  /** RankSeg head time at the largest vocabulary ÷ at the smallest, at most. */
  vocab: 2,
  /** Data pipeline images/s ÷ images/s a training step consumes, at least. */
  data: 3,
} as const;

/** The outputs of one inference, as both sides report them (flattened). */
export interface InferenceOutputs {
  readonly scores: readonly number[];
  readonly selected: readonly number[];
  readonly logits: readonly number[];
  readonly classes: readonly number[];
}

export interface Agreement {
  /** Share of pixels whose predicted class is the same. */
  readonly classes: number;
  readonly selectedEqual: boolean;
  /** Largest absolute differences. */
  readonly scores: number;
  readonly logits: number;
}

const maxAbsDiff = (a: readonly number[], b: readonly number[]) =>
  a.length !== b.length ? Infinity : a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

/** How closely our exported model's outputs match PyTorch's for the same image. */
export const agreement = (ours: InferenceOutputs, peer: InferenceOutputs): Agreement => ({
  classes: ours.classes.length === peer.classes.length && ours.classes.length > 0
    ? ours.classes.filter((c, i) => c === peer.classes[i]).length / ours.classes.length
    : 0,
  selectedEqual: ours.selected.length === peer.selected.length &&
    ours.selected.every((c, i) => c === peer.selected[i]),
  scores: maxAbsDiff(ours.scores, peer.scores),
  logits: maxAbsDiff(ours.logits, peer.logits),
});

export interface PerfThread {
  readonly threads: number;
  /** MatMul peak through ONNX Runtime, GFLOP/s, measured in this run (best of the rounds). */
  readonly peak: number;
  /** Milliseconds per training step and per one-image inference, pooled over the rounds. */
  readonly train: { readonly ours: Summary; readonly peer: Summary };
  readonly infer: { readonly ours: Summary; readonly peer: Summary };
  /** Loss before each step from the same initial parameters and batch (first round). */
  readonly ourLosses: readonly number[];
  readonly peerLosses: readonly number[];
  /** Cores other processes kept busy on average while each side was measured. */
  readonly load: { readonly ours: number; readonly peer: number };
  /** ORT's profile of our step without and with the runtime's host-memory recycling. */
  readonly overhead: { readonly before: StepProfile; readonly after: StepProfile };
  /** The quickstart experiment's training step (for the data-pipeline ratio). */
  readonly quickstartStep: Summary;
  /** ORT's profile of our one-image inference. */
  readonly inferProfile: InferenceProfile;
  /** Ours with idle intra-op threads sleeping instead of spinning (T > 1 only; one round). */
  readonly withoutSpinning?: { readonly train: Summary; readonly infer: Summary; readonly load: number };
}

export interface VocabMeasurement {
  readonly threads: number;
  readonly ms: Summary;
  readonly peakRssMiB: number;
  readonly rssBeforeSessionMiB: number;
}

export interface VocabRow {
  readonly variant: HeadVariant;
  readonly classes: number;
  readonly params: number;
  readonly flops: number;
  /** Absent when the configuration is not run (ξ's encoder at 21,841 classes). */
  readonly runs?: readonly VocabMeasurement[];
}

export interface LoaderFigure {
  readonly label: string;
  readonly batch: number;
  readonly crop: readonly [number, number];
  readonly workers: number;
  readonly imagesPerSecond: number;
}

export interface PerfFigures {
  readonly date: string;
  readonly seconds: number;
  readonly machine: Machine;
  readonly torch: string;
  readonly blas: string;
  /** "T=1: torch 1, OpenBLAS 1; …" as the peer reported them. */
  readonly peerThreads: string;
  readonly model: {
    readonly description: string;
    readonly params: number;
    /** Floats of state a step feeds in and gets back (parameters and momentum). */
    readonly stateFloats: number;
    readonly batch: number;
    readonly size: number;
    readonly step: StepFlops;
    /** The exported inference graph at batch 1. */
    readonly inference: StepFlops;
  };
  readonly quickstart: {
    readonly description: string;
    readonly batch: number;
    readonly crop: readonly [number, number];
  };
  readonly rounds: number;
  readonly trainRepeats: Repeats;
  readonly inferRepeats: Repeats;
  readonly profileRepeats: Repeats;
  readonly vocabRepeats: Repeats;
  readonly checkSteps: number;
  readonly quietWait: { readonly start: number; readonly turn: number };
  readonly byThreads: readonly PerfThread[];
  readonly agreement: Agreement;
  readonly vocab: readonly VocabRow[];
  readonly vocabSetting: { readonly kappa: number; readonly dim: number; readonly grid: number };
  readonly loaders: { readonly quickstart: LoaderFigure; readonly perf: LoaderFigure };
  /** Op counts of the training step and the exported model, emitted and after ORT's optimizations. */
  readonly graphs: readonly GraphOps[];
  /** The PyTorch 2 and JAX peers (absent in records made before they were part of the bench). */
  readonly peers?: PeersFigures;
}

// ---------------------------------------------------------------------------------------------------
// Derived figures

export const trainRatio = (t: PerfThread): number => t.train.ours.median / t.train.peer.median;
export const inferRatio = (t: PerfThread): number => t.infer.ours.median / t.infer.peer.median;
/** Model FLOPs per second of our step (counted on the graph) ÷ the MatMul peak at the same T. */
/** The MFU goal at a thread count. */
const mfuGoal = (t: PerfThread): number => (t.threads >= 2 ? GOALS.mfuThreaded : GOALS.mfu);

/** The training step's speed-up from one thread to `t`'s, or undefined at T = 1 or without a T = 1 run. */
export const speedUp = (f: PerfFigures, t: PerfThread): number | undefined => {
  const one = f.byThreads.find((u) => u.threads === 1);
  return t.threads === 1 || !one ? undefined : one.train.ours.median / t.train.ours.median;
};

export const mfu = (f: PerfFigures, t: PerfThread): number =>
  gflops(f.model.step.step, t.train.ours.median) / t.peak;

const vocabMs = (f: PerfFigures, variant: HeadVariant, classes: number, threads: number) =>
  f.vocab.find((r) => r.variant === variant && r.classes === classes)?.runs
    ?.find((m) => m.threads === threads)?.ms.median ?? NaN;

const vocabSizes = (f: PerfFigures) => [...new Set(f.vocab.map((r) => r.classes))].sort((a, b) => a - b);

/** Head time at the largest vocabulary ÷ at the smallest. */
export const vocabGrowth = (f: PerfFigures, variant: HeadVariant, threads: number): number => {
  const ks = vocabSizes(f);
  return vocabMs(f, variant, ks[ks.length - 1], threads) / vocabMs(f, variant, ks[0], threads);
};

/** Loader images/s ÷ images/s a training step of `stepMs` for `batch` images consumes. */
export const dataRatio = (loader: LoaderFigure, stepMs: number): number =>
  loader.imagesPerSecond / ((loader.batch * 1000) / stepMs);

/** The two loader settings, each against the training step it feeds (quickstart's or the perf model's). */
const loaderSettings = (f: PerfFigures) => [
  { loader: f.loaders.quickstart, stepMs: (t: PerfThread) => t.quickstartStep.median },
  { loader: f.loaders.perf, stepMs: (t: PerfThread) => t.train.ours.median },
];

/** Share of the step spent outside ONNX Runtime's run. */
export const outsideShare = (p: StepProfile): number => p.outsideMs / p.wallMs;

// ---------------------------------------------------------------------------------------------------
// Rendering

const x2 = (v: number) => fixed(v, 2);

/** One thread count's column per `T`, from the figures of that thread count. */
const perThread = <R>(
  f: PerfFigures,
  header: (t: PerfThread) => string,
  cell: (row: R, t: PerfThread) => string,
): Column<R>[] => f.byThreads.map((t) => ({ header: header(t), cell: (r: R) => cell(r, t) }));

/** A row of the summary: a goal, each T's figure, and whether every T meets it. */
interface Goal {
  readonly figure: string;
  readonly goal: string;
  readonly cell: (t: PerfThread) => string;
  readonly met: (t: PerfThread) => boolean;
}

const summaryTable = (f: PerfFigures) => {
  const ks = vocabSizes(f);
  const [kMin, kMax] = [ks[0], ks[ks.length - 1].toLocaleString("en-US")];
  const goals: Goal[] = [
    {
      figure: "Training step, ours / PyTorch",
      goal: `≤ ${GOALS.train}`,
      cell: (t) => `${x2(trainRatio(t))} (${ms(t.train.ours.median)} / ${ms(t.train.peer.median)} ms)`,
      met: (t) => trainRatio(t) <= GOALS.train,
    },
    {
      figure: "Inference, one image: exported ONNX / PyTorch eager",
      goal: `≤ ${GOALS.infer}`,
      cell: (t) => `${x2(inferRatio(t))} (${ms(t.infer.ours.median)} / ${ms(t.infer.peer.median)} ms)`,
      met: (t) => inferRatio(t) <= GOALS.infer,
    },
    {
      figure: "MFU: training FLOP/s ÷ ORT MatMul peak",
      goal: `≥ ${GOALS.mfu} (T = 1), ≥ ${GOALS.mfuThreaded} (T ≥ 2)`,
      cell: (t) =>
        `${x2(mfu(f, t))} (${fixed(gflops(f.model.step.step, t.train.ours.median), 1)} / ${
          fixed(t.peak, 1)
        } GFLOP/s)`,
      met: (t) => mfu(f, t) >= mfuGoal(t),
    },
    {
      figure: "Training step speed-up from more threads: step at T = 1 ÷ step at T",
      goal: `≥ ${GOALS.speedUp}`,
      cell: (t) => {
        const s = speedUp(f, t);
        return s === undefined ? "–" : `${x2(s)}×`;
      },
      met: (t) => (speedUp(f, t) ?? Infinity) >= GOALS.speedUp,
    },
    {
      figure: `RankSeg head (ξ = GAP), time at K = ${kMax} ÷ at K = ${kMin}`,
      goal: `≤ ${GOALS.vocab}`,
      cell: (t) => x2(vocabGrowth(f, "ranksegGap", t.threads)),
      met: (t) => vocabGrowth(f, "ranksegGap", t.threads) <= GOALS.vocab,
    },
    {
      figure: `Full-K pixel classifier head, time at K = ${kMax} ÷ at K = ${kMin}`,
      goal: "grows with K",
      cell: (t) => x2(vocabGrowth(f, "fullK", t.threads)),
      met: (t) => vocabGrowth(f, "fullK", t.threads) > GOALS.vocab,
    },
    ...loaderSettings(f).map(({ loader: l, stepMs }): Goal => ({
      figure: `Data pipeline images/s ÷ images/s a training step consumes (${l.label})`,
      goal: `≥ ${GOALS.data}`,
      cell: (t) =>
        `${fixed(dataRatio(l, stepMs(t)), 1)} (${fixed(l.imagesPerSecond, 1)} / ${
          fixed((l.batch * 1000) / stepMs(t), 1)
        })`,
      met: (t) => dataRatio(l, stepMs(t)) >= GOALS.data,
    })),
    {
      figure: "Runtime overhead: time outside session.run ÷ step, before → after recycling",
      goal: "shrink it",
      cell: (t) => `${pct(outsideShare(t.overhead.before))} → ${pct(outsideShare(t.overhead.after))}`,
      met: (t) => outsideShare(t.overhead.after) < outsideShare(t.overhead.before),
    },
  ];
  return table<Goal>([
    { header: "figure", cell: (g) => g.figure },
    { header: "goal", cell: (g) => g.goal },
    ...perThread<Goal>(f, (t) => `T = ${t.threads}`, (g, t) => g.cell(t)),
    { header: "goal met", cell: (g) => (f.byThreads.every(g.met) ? "met" : "**not met**") },
  ], goals);
};

const loadNote = (f: PerfFigures): string => {
  const worst = Math.max(
    0,
    ...f.byThreads.flatMap((t) => [t.load.ours, t.load.peer]).filter(Number.isFinite),
  );
  return worst > QUIET_LOAD
    ? `**Other processes were busy during this run**: up to ${fixed(worst, 2)} of ${f.machine.cores} cores ` +
      `while a side was measured (per side and T in the training table). Both sides are slowed, T = ` +
      `${f.machine.cores} most; the alternating rounds spread the disturbance over both.`
    : `The machine was quiet: other processes kept at most ${fixed(worst, 2)} cores busy while either ` +
      `side was measured.`;
};

const trainTable = (f: PerfFigures) =>
  table<PerfThread>([
    threadsColumn,
    ...sideBySideColumns((t: PerfThread) => t.train, f.model.step.step),
    { header: "MatMul peak GFLOP/s", cell: (t) => fixed(t.peak, 1) },
    { header: "MFU", cell: (t) => pct(mfu(f, t)) },
    loadColumn(),
  ], f.byThreads);

const inferTable = (f: PerfFigures) =>
  table<PerfThread>([
    threadsColumn,
    { header: "ours ms (exported ONNX)", cell: (t) => spread(t.infer.ours) },
    { header: "PyTorch ms (eager, no_grad)", cell: (t) => spread(t.infer.peer) },
    { header: "ours / PyTorch", cell: (t) => x2(inferRatio(t)) },
    { header: "ours GFLOP/s", cell: (t) => fixed(gflops(f.model.inference.forward, t.infer.ours.median), 1) },
    {
      header: "PyTorch GFLOP/s",
      cell: (t) => fixed(gflops(f.model.inference.forward, t.infer.peer.median), 1),
    },
  ], f.byThreads);

/** Kernel time per part of the model and T, forward and backward, then all kernels (MatMul among them). */
const componentTable = (f: PerfFigures) => {
  const names = [...new Set(f.byThreads.flatMap((t) => t.overhead.after.components.map((c) => c.component)))];
  const of = (t: PerfThread, name: string) => t.overhead.after.components.find((c) => c.component === name);
  type Row = { readonly name: string; readonly cells: (t: PerfThread) => readonly [string, string] };
  const rows: Row[] = [
    ...names.map((name): Row => ({
      name,
      cells: (t) => [ms(of(t, name)?.forwardMs ?? 0), ms(of(t, name)?.backwardMs ?? 0)],
    })),
    {
      name: "all kernels (MatMul kernels among them)",
      cells: (t) => [`${ms(t.overhead.after.kernelMs)} (${ms(t.overhead.after.matmulMs)})`, ""],
    },
  ];
  return table<Row>([
    { header: "part of the step", cell: (r) => r.name },
    ...f.byThreads.flatMap((t): Column<Row>[] => [
      { header: `T=${t.threads} forward ms`, cell: (r) => r.cells(t)[0] },
      { header: `T=${t.threads} backward ms`, cell: (r) => r.cells(t)[1] },
    ]),
  ], rows);
};

const overheadTable = (f: PerfFigures) => {
  type Row = { readonly threads: number; readonly label: string; readonly p: StepProfile };
  return table<Row>(
    [
      threadsColumn,
      { header: "host memory", cell: (r) => r.label },
      { header: "step ms", cell: (r) => ms(r.p.wallMs) },
      { header: "in session.run", cell: (r) => ms(r.p.runMs) },
      { header: "outside session.run", cell: (r) => ms(r.p.outsideMs) },
      { header: "outside share", cell: (r) => pct(outsideShare(r.p)) },
      { header: "page faults / step", cell: (r) => fixed(r.p.faultsPerStep, 0) },
    ],
    f.byThreads.flatMap(({ threads, overhead }) => [
      { threads, label: "not recycled (before)", p: overhead.before },
      { threads, label: "recycled (after)", p: overhead.after },
    ]),
  );
};

const vocabTable = (f: PerfFigures) => {
  const at = (r: VocabRow, t: PerfThread) => r.runs?.find((m) => m.threads === t.threads);
  return table<VocabRow>([
    { header: "head", cell: (r) => VARIANT_LABEL[r.variant] },
    { header: "K", cell: (r) => r.classes.toLocaleString("en-US") },
    { header: "params", cell: (r) => r.params.toLocaleString("en-US") },
    { header: "MFLOPs", cell: (r) => fixed(r.flops / 1e6, 0) },
    ...perThread<VocabRow>(
      f,
      (t) => `T=${t.threads} ms`,
      (r, t) => (at(r, t) ? spread(at(r, t)!.ms) : "not run"),
    ),
    ...perThread<VocabRow>(
      f,
      (t) => `T=${t.threads} peak RSS MiB`,
      (r, t) => (at(r, t) ? fixed(at(r, t)!.peakRssMiB, 0) : "–"),
    ),
    {
      header: "RSS before session MiB",
      cell: (r) => (r.runs ? fixed(r.runs[0].rssBeforeSessionMiB, 0) : "–"),
    },
  ], f.vocab);
};

const dataTable = (f: PerfFigures) => {
  type Setting = ReturnType<typeof loaderSettings>[number];
  return table<Setting>([
    {
      header: "setting",
      cell: ({ loader: l }) =>
        `${l.label}: batch ${l.batch}, crop ${l.crop.join("×")}, ${l.workers} decoding Worker${
          l.workers === 1 ? "" : "s"
        }`,
    },
    { header: "loader images/s", cell: ({ loader }) => fixed(loader.imagesPerSecond, 1) },
    ...f.byThreads.flatMap((t): Column<Setting>[] => [
      { header: `T=${t.threads} step ms`, cell: ({ stepMs }) => ms(stepMs(t)) },
      {
        header: `T=${t.threads} step images/s`,
        cell: (s) => fixed((s.loader.batch * 1000) / s.stepMs(t), 1),
      },
      { header: `T=${t.threads} ratio`, cell: (s) => fixed(dataRatio(s.loader, s.stepMs(t)), 1) },
    ]),
  ], loaderSettings(f));
};

/** Fused ops ORT has for transformers that appear in none of the optimized graphs. */
const missingFusions = (f: PerfFigures): string =>
  ["com.microsoft.Attention", "com.microsoft.MultiHeadAttention", "com.microsoft.SkipLayerNormalization"]
    .filter((op) => f.graphs.every((g) => !g.optimized.has(op)))
    .join(", ") || "none";

/** Ours at T > 1 with ONNX Runtime's thread spinning off, beside the default (spinning) figures. */
const spinningNote = (f: PerfFigures): string => {
  const rows = f.byThreads.filter((t) => t.withoutSpinning);
  if (rows.length === 0) return "";
  return `ONNX Runtime's idle intra-op threads spin by default (all figures above). With spinning off
(\`spinning: false\` in the runtime options; PyTorch's OpenMP threads wait passively, see above), measured once
after the rounds (${f.trainRepeats.runs} steps, ${f.inferRepeats.runs} inferences):

${
    table<PerfThread>([
      threadsColumn,
      {
        header: "training ms, spinning / off",
        cell: (t) => `${ms(t.train.ours.median)} / ${ms(t.withoutSpinning!.train.median)}`,
      },
      {
        header: "inference ms, spinning / off",
        cell: (t) => `${ms(t.infer.ours.median)} / ${ms(t.withoutSpinning!.infer.median)}`,
      },
      { header: "other load, cores (off)", cell: (t) => fixed(t.withoutSpinning!.load, 2) },
    ], rows)
  }

${
    rows.map((t) => {
      const change = t.withoutSpinning!.train.median / t.train.ours.median - 1;
      return `At T = ${t.threads}, spinning off made our training step ${pct(Math.abs(change))} ${
        change < 0 ? "faster" : "slower"
      } in this run (other processes' load meanwhile: ${fixed(t.withoutSpinning!.load, 2)} cores).`;
    }).join(" ")
  } Spinning threads compete with other processes for the cores, and a parallel section waits for a thread that
lost its core; with the cores to itself, spinning saves the wake-up of sleeping threads.`;
};

const graphTable = (g: GraphOps) => {
  const sum = (m: ReadonlyMap<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const rows = [
    ...notableOps(g, 12).map((op) => ({
      op,
      emitted: g.emitted.get(op) ?? 0,
      optimized: g.optimized.get(op) ?? 0,
    })),
    { op: "all nodes", emitted: sum(g.emitted), optimized: sum(g.optimized) },
  ];
  return table<typeof rows[number]>([
    { header: `${g.name}: op`, cell: (r) => r.op },
    { header: "emitted", cell: (r) => String(r.emitted) },
    { header: "after ORT's optimizations", cell: (r) => String(r.optimized) },
  ], rows);
};

/** Notes for the goals that were not met: the measured gap and what the profile says causes it. */
/**
 * Notes for the peer goals (ours ÷ the best peer of a precision class) missed at `t`: by how much, and
 * where our time goes (the profile of this run) or why the class has no step of ours.
 */
const peerGapNotes = (f: PerfFigures, t: PerfThread): string[] => {
  const peers = f.peers;
  const ours = peers?.ours.find((o) => o.threads === t.threads);
  if (!peers || !ours) return [];
  const f1 = (x: number) => fixed(x, 1);
  const notes: string[] = [];
  const gap = (
    what: string,
    mine: Summary,
    pick: (s: SideThread) => Summary,
    goal: number,
    precision?: "fp32" | "bf16",
  ) => {
    const best = againstBest(peers, t.threads, pick, mine, precision);
    if (!best || best.ratio <= goal) return undefined;
    const target = goal * best.peer.median;
    return `${what}, T = ${t.threads}: ours ${ms(mine.median)} ms against the goal's ${ms(target)} ms ` +
      `(${goal} × ${best.label}'s ${ms(best.peer.median)} ms), ${ms(mine.median - target)} ms over.`;
  };
  const p = t.overhead.after;
  const trainWhere = `In ORT's profile of our step the matmul kernels take ${ms(p.matmulMs)} ms (` +
    `${pct(gflops(f.model.step.matmul, p.matmulMs) / t.peak)} of the MatMul peak), other kernels ` +
    `${ms(p.kernelMs - p.matmulMs)} ms, outside the run ${ms(p.outsideMs)} ms.`;
  const fp32 = gap(
    "Training against the best float32 peer",
    ours.train,
    (s) => s.train,
    PEER_GOALS.train,
    "fp32",
  );
  if (fp32) notes.push(`${fp32} ${trainWhere}`);
  const bf16 = gap(
    "Training against the best bf16 peer",
    ours.train,
    (s) => s.train,
    PEER_GOALS.train,
    "bf16",
  );
  if (bf16) {
    notes.push(
      `${bf16} Ours is a float32 step: ONNX Runtime 1.30's CPU provider has no bf16 MatMul, Gemm or ` +
        `elementwise kernels, and its float16 MatMul is no faster than float32 without avx512_fp16 ("Reduced ` +
        `precision (training)"), so this class compares our float32 step with bf16 matmuls. At the MatMul ` +
        `peak the step's ${f1(f.model.step.matmul / 1e9)} GFLOP of float32 matmuls alone need ` +
        `${ms(f.model.step.matmul / (t.peak * 1e6))} ms. ${trainWhere}`,
    );
  }
  const infer = gap(
    "Inference against the best float32 peer",
    ours.infer,
    (s) => s.infer,
    PEER_GOALS.infer,
    "fp32",
  );
  if (infer) {
    const ip = t.inferProfile;
    notes.push(
      `${infer} In ORT's profile of one inference the matmul kernels take ${ms(ip.matmulMs)} ms (` +
        `${pct(gflops(f.model.inference.matmul, ip.matmulMs) / t.peak)} of the MatMul peak), other kernels ` +
        `${ms(ip.kernelMs - ip.matmulMs)} ms and ONNX Runtime ${ms(ip.runMs - ip.kernelMs)} ms between ` +
        `kernels: the elementwise work around the matmuls runs kernel by kernel in ORT's CPU provider.`,
    );
  }
  return notes;
};

const gapNotes = (f: PerfFigures): string[] => {
  const notes: string[] = [];
  const f1 = (x: number) => fixed(x, 1);
  for (const t of f.byThreads) {
    const p = t.overhead.after;
    const first = notes.length;
    if (trainRatio(t) > GOALS.train) {
      const [ours, peer] = [t.train.ours.median, t.train.peer.median];
      const target = GOALS.train * peer;
      const mmRate = gflops(f.model.step.matmul, p.matmulMs);
      const floor = f.model.step.matmul / (t.peak * 1e6);
      notes.push(
        `Training, T = ${t.threads}: ours ${ms(ours)} ms against the goal's ${ms(target)} ms ` +
          `(0.8 × PyTorch's ${ms(peer)} ms), ${ms(ours - target)} ms over. ` +
          `MatMul kernels take ${ms(p.matmulMs)} ms of it (${f1(mmRate)} GFLOP/s, ` +
          `${pct(mmRate / t.peak)} of the MatMul peak; ${f1(f.model.step.matmul / 1e9)} GFLOP of matmuls ` +
          `need ≥ ${ms(floor)} ms at the peak), other kernels ${ms(p.kernelMs - p.matmulMs)} ms, outside ` +
          `the run ${ms(p.outsideMs)} ms.`,
      );
    }
    if (inferRatio(t) > GOALS.infer) {
      const [ours, peer] = [t.infer.ours.median, t.infer.peer.median];
      const target = GOALS.infer * peer;
      const ip = t.inferProfile;
      const [mm, others, between] = [ip.matmulMs, ip.kernelMs - ip.matmulMs, ip.runMs - ip.kernelMs];
      const mmRate = gflops(f.model.inference.matmul, ip.matmulMs);
      const needed = gflops(f.model.inference.forward, target);
      const peerRate = gflops(f.model.inference.forward, peer);
      notes.push(
        `Inference, T = ${t.threads}: ours ${ms(ours)} ms against the goal's ${ms(target)} ms ` +
          `(0.5 × PyTorch's ${ms(peer)} ms), ${ms(ours - target)} ms over. ` +
          `The goal means ${f1(needed)} GFLOP/s over the whole model, ${pct(needed / t.peak)} of the ` +
          `MatMul peak measured in this run (${f1(t.peak)} GFLOP/s); PyTorch reaches ${f1(peerRate)}. ` +
          `In ORT's profile our matmul kernels alone take ${ms(mm)} ms (${f1(mmRate)} GFLOP/s, ` +
          `${pct(mmRate / t.peak)} of the peak), ${pct(mm / target)} of the goal's time; the other ` +
          `kernels (LayerNorm, GELU, softmax, head transposes, argmax) take ${ms(others)} ms ` +
          `and ONNX Runtime ${ms(between)} ms between kernels. The matmuls already run at about ` +
          `the peak; the rest are kernels that ONNX Runtime's CPU provider runs one by one (it has no fused ` +
          `attention, and no LayerNorm or GELU fused into a matmul, for this graph).`,
      );
    }
    const s = speedUp(f, t);
    if (s !== undefined && s < GOALS.speedUp) {
      const one = f.byThreads.find((u) => u.threads === 1)!.overhead.after;
      notes.push(
        `Speed-up, T = ${t.threads}: ${x2(s)}× (goal ${GOALS.speedUp}×). MatMul kernels ` +
          `${ms(one.matmulMs)} → ${ms(p.matmulMs)} ms (${x2(one.matmulMs / p.matmulMs)}×), other kernels ` +
          `${ms(one.kernelMs - one.matmulMs)} → ${ms(p.kernelMs - p.matmulMs)} ms ` +
          `(${x2((one.kernelMs - one.matmulMs) / (p.kernelMs - p.matmulMs))}×), outside the run ` +
          `${ms(one.outsideMs)} → ${ms(p.outsideMs)} ms: what does not split over the threads bounds it.`,
      );
    }
    if (mfu(f, t) < mfuGoal(t)) {
      notes.push(
        `MFU, T = ${t.threads}: ${pct(mfu(f, t))} (goal ${pct(mfuGoal(t))}); MatMul kernels run at ` +
          `${f1(gflops(f.model.step.matmul, p.matmulMs))} GFLOP/s, and ${ms(p.kernelMs - p.matmulMs)} ms ` +
          `of other kernels and ${ms(p.outsideMs)} ms outside the run add time without matmul FLOPs.`,
      );
    }
    const before = t.overhead.before;
    if (outsideShare(p) >= outsideShare(before)) {
      notes.push(
        `Runtime overhead, T = ${t.threads}: recycling took page faults per step from ` +
          `${fixed(before.faultsPerStep, 0)} to ${fixed(p.faultsPerStep, 0)}, but the time outside ` +
          `session.run went from ${ms(before.outsideMs)} to ${ms(p.outsideMs)} ms ` +
          `(${pct(outsideShare(before))} → ${pct(outsideShare(p))} of the step; the two settings run in ` +
          `separate processes). What remains is onnxruntime-node copying every output into a fresh JS ` +
          `array and the state being fed back in, which recycling does not touch and the binding gives ` +
          `no way around (pre-allocated outputs are copied out as well).`,
      );
    }
    for (const { loader: l, stepMs: stepOf } of loaderSettings(f)) {
      const stepMs = stepOf(t);
      if (dataRatio(l, stepMs) < GOALS.data) {
        notes.push(
          `Data pipeline (${l.label}), T = ${t.threads}: the loader delivers ${f1(l.imagesPerSecond)} ` +
            `images/s, ${f1(dataRatio(l, stepMs))}× the ${f1((l.batch * 1000) / stepMs)} images/s a ` +
            `${ms(stepMs)} ms step consumes; with ${f.machine.cores} cores the decoding Worker and the ` +
            `step share the CPU.`,
        );
      }
    }
    notes.push(...peerGapNotes(f, t));
    // Under outside load the gap is partly that load's: say so next to every note of this T.
    const load = Math.max(t.load.ours, t.load.peer);
    if (load > QUIET_LOAD) {
      for (let i = first; i < notes.length; i++) {
        notes[i] += ` Measured beside other processes keeping ${fixed(load, 2)} cores busy (of ` +
          `${f.machine.cores}): at T = ${t.threads} they took cores from us and from PyTorch alike; the ` +
          `figure is not a quiet machine's.`;
      }
    }
  }
  return notes;
};

/** The body of the "Performance (segmenter)" section. */
export const renderPerf = (f: PerfFigures): string => {
  const tr = f.trainRepeats, ir = f.inferRepeats, pr = f.profileRepeats, vr = f.vocabRepeats;
  const a = f.agreement, selected = a.selectedEqual ? "identical" : "**not identical**";
  const notes = gapNotes(f);
  const ks = vocabSizes(f);
  const threads = f.byThreads.map((t) => t.threads).join(" and ");
  const { step, inference } = f.model;
  const gf = (flops: number) => fixed(flops / 1e9, 2);
  const [firstTolerance, stepsTolerance] = [rel(FIRST_LOSS_TOLERANCE), rel(STEPS_LOSS_TOLERANCE)];
  const v = f.vocabSetting, side = v.grid * 16, kMax = ks[ks.length - 1];
  const kMaxText = kMax.toLocaleString("en-US"), stateM = fixed(f.model.stateFloats / 1e6, 1);
  return `
Command: \`${COMMAND}\` (${f.date}, ${fixed(f.seconds / 60, 1)} min in all). Every figure below comes from
this one run.

- Machine: ${f.machine.cpu}, ${f.machine.cores} cores, ${f.machine.memoryGiB} GiB.
- Ours: onnxruntime-node ${f.machine.ort}, CPU execution provider, graph optimization "all",
  intraOpNumThreads = T, interOpNumThreads = 1.
- PyTorch: ${f.torch} (Debian \`python3-torch\`, eager), \`torch.set_num_threads(T)\`, OpenBLAS threads = T
  (${f.peerThreads}), \`OMP_WAIT_POLICY=PASSIVE\`.
- BLAS used by PyTorch: ${f.blas}.
- T = ${threads}, equal on both sides. The sides never run at the same time:
  ${f.rounds} rounds, each measuring ours then PyTorch at every T; samples are pooled over the rounds. Before each
  turn the bench waits up to ${f.quietWait.turn} s (${f.quietWait.start} s at the start) for other processes to
  use less than ${QUIET_LOAD} cores.

${loadNote(f)}

### Summary

${summaryTable(f)}

${notes.length ? notes.map((n) => `- ${n}`).join("\n") : "Every goal was met."}

### The model

${f.model.description} ${f.model.params.toLocaleString("en-US")} parameters; batch ${f.model.batch} of
${f.model.size}×${f.model.size} images (a fixed synthetic batch: normal noise images, label maps of 16×16-pixel
cells from six classes per image, 10 % of the cells ignored). SGD with momentum 0.9, no weight decay. The
PyTorch peer (\`bench/peer/segmenter.py\`) is the same model written in PyTorch modules (patch embedding as a
stride-16 \`Conv2d\`, \`F.adaptive_avg_pool2d\` for ξ's pooling, \`F.interpolate\` and \`F.cross_entropy\` for the
pixel loss), loaded with our initial parameters.

FLOPs, counted on our graphs by the per-op rules (2 per multiply-add in matmuls and convolutions, about one per
element otherwise): a training step (forward, backward and update) ${gf(step.step)} GFLOP, of
which ${gf(step.matmul)} in matmuls; its forward part ${gf(step.forward)}
GFLOP (3 × forward would say ${gf(3 * step.forward)}). One-image inference (the exported
graph) ${gf(inference.forward)} GFLOP, ${gf(inference.matmul)} in
matmuls. Both sides' GFLOP/s use these counts; MFU divides ours by the MatMul peak measured through ONNX
Runtime at the same T in the same run (\`matmulPeak\`'s sizes, best of the rounds).

### Training step

Our step is one ONNX graph (forward, losses, backward, SGD update; \`minimize\` also computes the gradient norm);
PyTorch runs \`loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)\`. Median (p10–p90) of
${f.rounds} × ${tr.runs} steps, each round after ${tr.warmup} warm-up steps on the same batch.

${trainTable(f)}

Equal work: both sides start from our initial parameters (a safetensors file; linear weights transposed to
PyTorch's [out, in], the patch embedding reshaped to a convolution kernel) and see the same batch. Loss before
each step (first round):

${lossTable(f.byThreads, f.checkSteps, f.trainRepeats.warmup + f.trainRepeats.runs, false)}

Tolerances: ${firstTolerance} relative before the first update, ${stepsTolerance} over the
first ${f.checkSteps} steps.

${spinningNote(f)}

### Inference, one image

Ours: the ONNX file \`exportModel\` writes (parameters embedded, dynamic batch; outputs classes, K-class logits
at the feature grid, scores, selected classes), in a fresh ONNX Runtime session. PyTorch: the same model in
eval mode under \`torch.no_grad()\`, computing the same four outputs. Median (p10–p90) of ${f.rounds} × ${ir.runs}
runs after ${ir.warmup} warm-up runs per round.

${inferTable(f)}

Same outputs: ${fixed(100 * a.classes, 3)} % of the pixels get the same class, the selected classes are
${selected}, scores differ by at most ${rel(a.scores)} and logits by at
most ${rel(a.logits)}.

### Where our step's time goes

ONNX Runtime's profile of our step (medians of ${pr.runs} profiled steps per T after ${pr.warmup} warm-up steps,
in a separate process per setting): kernel time per part of the model, forward and backward. Node names carry
the IR scope (\`backward:model.backbone.blocks.3.attn/MatMul_812\`), so the trace attributes each kernel;
"inserted by ONNX Runtime" are the Transpose/Reshape nodes its optimizers add.

${componentTable(f)}

What ONNX Runtime's graph optimizations (level "all") make of our graphs, read back from the model it writes to
\`optimizedModelFilePath\`: the most frequent op types and every op it introduces. FusedMatMul is a MatMul
with a transposed operand folded in (autodiff's \`mT\`), Gemm a MatMul with its bias Add (only where shapes are
static: the exported model's symbolic batch keeps MatMul and Add apart), BiasGelu a bias Add with the GELU.
Fusions that did not happen in either graph: ${
    missingFusions(f)
  }. onnxruntime-node's CPU build also has no gradient kernels (GeluGrad, LayerNormalizationGrad and
SoftmaxGrad_13 are not registered), so the backward pass's LayerNorm, GELU and softmax gradients stay chains of
elementwise kernels: most of the non-matmul time above.

${f.graphs.map(graphTable).join("\n\n")}

### Per-step overhead of the plan runtime

"Outside session.run" = the step's wall time minus ONNX Runtime's own \`model_run\` time, step by step: feeding
the ${stateM} M floats of state (parameters and momentum) in, onnxruntime-node copying
every output into a fresh JS array, and our host work. Pre-allocated outputs (\`session.run(feeds, fetches)\`) do
not avoid the copy: the binding writes into them and then copies them out as well. What shrank it: a state
array a run produced is released as soon as the next run replaces it, and glibc's malloc keeps freed memory
(\`runtime/host_memory.ts\`), so each step's output arrays reuse the previous step's pages instead of faulting in
new ones. Each setting measured in its own process.

${overheadTable(f)}

### Vocabulary scaling of the head

The segmentation head alone (\`segmenterHead\`: ξ, selection, ψ, τ; pixel tokens [1, ${v.grid ** 2},
${v.dim}] of one ${side}² image in, logits at the ${v.grid}×${v.grid}
feature grid out), exported with its parameters and run in its own Deno process per configuration; peak RSS is
that process's VmHWM (Deno, ONNX Runtime, the model and its runs). RankSeg: top-κ with κ = ${v.kappa},
ψ = mask transformer (2 layers) over the pixel tokens and κ class tokens, rank-adaptive τ. Full-K: ψ = per-pixel
linear classifier over all K classes. ξ's transformer encoder attends over 64 + K tokens, O(K²) (at K =
${kMaxText} two heads of ${(64 + kMax).toLocaleString("en-US")}² scores
would be ${fixed((2 * (64 + kMax) ** 2 * 4) / 2 ** 30, 1)} GiB), so it is not run there; RankSeg's flat
cost at large K takes the GAP + linear ξ, and the goal is measured on that variant. Median (p10–p90) of
${vr.runs} runs after ${vr.warmup} warm-up runs. Upsampling to the image and the per-pixel argmax are not
part of the head; they cost O(κ) resp. O(K) per pixel (for the full-K classifier at K =
${kMaxText} the ${side}² map of K float32 channels alone would hold
${fixed((kMax * side ** 2 * 4) / 2 ** 30, 1)} GiB).

${vocabTable(f)}

### Data pipeline against the training step

\`trainLoader\` on CamVid (\`bench/data.ts\`'s \`loaderImagesPerSecond\`: the loader on its own, median of 3 runs of
10 batches after 4 warm-up batches), against the images/s our training step consumes (batch ÷ step time):
the quickstart experiment's (${f.quickstart.description}) and the perf model's.

${dataTable(f)}
${f.peers ? renderPeers(f.peers) : ""}`;
};
