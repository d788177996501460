/**
 * The "Performance (MobileNetV2 segmenter)" section of BENCHMARKS.md (`deno task bench perf
 * --model=mobilenet`): kappa's MobileNetV2 segmenter against the same model in PyTorch 2 (eager,
 * torch.compile, both also under bf16 autocast), training step and one-image inference as ratios, the
 * step-1 / step-2 loss check, and MFU against the MatMul peak measured in the same run, with the FLOPs
 * split so that the depthwise convolutions' (memory-bound) share is visible. Pure: everything measured
 * comes in as data.
 */
import type { Side } from "./peers.ts";
import { bestSide } from "./peers_report.ts";
import { checkEqualWork, FIRST_LOSS_TOLERANCE, rowsByThreads, STEPS_LOSS_TOLERANCE } from "./comparison.ts";
import {
  fixed,
  formatLoss as loss,
  formatMs as ms,
  formatPercent as pct,
  formatRelative as rel,
  formatSpread as spread,
  table,
} from "../figures/markdown.ts";
import { gflops, largestRelativeDifference, type Summary } from "../figures/stats.ts";

/** FLOPs of a graph by kind of operation (2 per multiply-add in matmuls and convolutions). */
export interface FlopSplit {
  readonly total: number;
  readonly matmul: number;
  /** Dense (group 1) Conv / ConvTranspose. */
  readonly conv: number;
  /** Depthwise (group = channels) Conv / ConvTranspose. */
  readonly depthwise: number;
}

export interface MobileNetSideThread {
  readonly threads: number;
  readonly config: string;
  readonly train: Summary;
  readonly infer: Summary;
  /** Loss before each step, first round (for compiled sides the compiling step first). */
  readonly losses: readonly number[];
  readonly load: number;
}

export interface MobileNetSide {
  readonly side: Side;
  readonly version: string;
  readonly byThreads: readonly MobileNetSideThread[];
  /** Seconds of the first step in the side's first process (compiling, for compiled sides). */
  readonly firstStepSeconds: number;
}

export interface MobileNetOurs {
  readonly threads: number;
  /** ORT MatMul peak GFLOP/s at this T, best of the rounds. */
  readonly peak: number;
  readonly train: Summary;
  readonly infer: Summary;
  /** One-image inference of the int8-static export (calibrated QDQ convolutions), when measured. */
  readonly inferInt8?: Summary;
  readonly losses: readonly number[];
  readonly load: number;
}

export interface MobileNetFigures {
  readonly command: string;
  readonly date: string;
  readonly machine: string;
  readonly model: {
    readonly description: string;
    readonly params: number;
    readonly batch: number;
    readonly size: number;
    readonly step: FlopSplit;
    readonly forward: number;
    readonly inference: FlopSplit;
  };
  readonly rounds: number;
  readonly trainRepeats: { readonly warmup: number; readonly runs: number };
  readonly inferRepeats: { readonly warmup: number; readonly runs: number };
  /** Steps whose losses must agree (step 1: before any update; step 2: after one). */
  readonly checkSteps: number;
  /** Steps whose largest difference is reported (not checked). */
  readonly reportSteps: number;
  readonly ours: readonly MobileNetOurs[];
  readonly sides: readonly MobileNetSide[];
  readonly missing: readonly string[];
  /** Free text on the machine's load while measuring (the bench cannot wait for quiet under a grid). */
  readonly loadNote: string;
}

const x2 = (v: number) => fixed(v, 2);
const gf = (v: number) => fixed(v, 1);
const g2 = (flops: number) => fixed(flops / 1e9, 2);

/** Every float32 side's losses agree with ours (bf16 sides are not checked). */
export const mobileNetEqualWork = (f: MobileNetFigures): boolean =>
  f.sides.every((s) =>
    s.side.precision !== "fp32" || s.byThreads.every((t) => check(f, t.threads, t.losses).passed)
  );

const check = (f: MobileNetFigures, threads: number, losses: readonly number[]) =>
  checkEqualWork(f.ours.find((o) => o.threads === threads)?.losses ?? [], losses, f.checkSteps);

interface Row {
  readonly label: string;
  readonly precision: Side["precision"];
  readonly threads: number;
  readonly config: string;
  readonly train: Summary;
  readonly infer: Summary;
  readonly ours: MobileNetOurs;
  readonly losses: readonly number[];
  readonly isOurs: boolean;
  readonly load: number;
}

const rows = (f: MobileNetFigures): Row[] =>
  rowsByThreads(f.ours, f.sides, (o): Row => ({
    label: "kappa (ONNX Runtime)",
    precision: "fp32",
    threads: o.threads,
    config: "ORT default (spinning)",
    train: o.train,
    infer: o.infer,
    ours: o,
    losses: o.losses,
    isOurs: true,
    load: o.load,
  }), (s, t, o): Row => ({
    label: s.side.label,
    precision: s.side.precision,
    threads: t.threads,
    config: t.config,
    train: t.train,
    infer: t.infer,
    ours: o,
    losses: t.losses,
    isOurs: false,
    load: t.load,
  }));

/** The fastest side of `precision` (any precision when undefined) at `threads` by `pick`. */
export const bestMobileNetSide = (
  f: MobileNetFigures,
  threads: number,
  pick: (t: MobileNetSideThread) => Summary,
  precision?: Side["precision"],
): { label: string; summary: Summary } | undefined => {
  const best = bestSide(f, threads, pick, precision);
  return best && { label: best.side.side.label, summary: pick(best.at) };
};

/** Issue 27's goals for the MobileNetV2 model: ours ÷ the best peer of a precision class, at most. */
export const MOBILENET_GOALS = { train: 0.8, infer: 0.8 } as const;

interface SummaryRow {
  readonly figure: string;
  /** The ratio's goal (at most), or none for a figure that has no goal. */
  readonly goal?: number;
  readonly cell: (o: MobileNetOurs) => { readonly text: string; readonly ratio?: number };
}

const summaryTable = (f: MobileNetFigures) => {
  const cell = (
    o: MobileNetOurs,
    pick: (t: MobileNetSideThread) => Summary,
    mine: Summary,
    p?: "fp32" | "bf16",
  ) => {
    const best = bestMobileNetSide(f, o.threads, pick, p);
    if (!best) return { text: "no peer ran" };
    const ratio = mine.median / best.summary.median;
    return {
      text: `${x2(ratio)} (${ms(mine.median)} / ${ms(best.summary.median)} ms, ${best.label})`,
      ratio,
    };
  };
  const figures: SummaryRow[] = [
    {
      figure: "Training step, float32: ours ÷ best float32 peer",
      goal: MOBILENET_GOALS.train,
      cell: (o) => cell(o, (t) => t.train, o.train, "fp32"),
    },
    {
      figure: "Training step: ours (float32) ÷ best bf16-autocast peer",
      goal: MOBILENET_GOALS.train,
      cell: (o) => cell(o, (t) => t.train, o.train, "bf16"),
    },
    {
      figure: "Inference, one image, float32: ours (exported ONNX) ÷ best float32 peer",
      goal: MOBILENET_GOALS.infer,
      cell: (o) => cell(o, (t) => t.infer, o.infer, "fp32"),
    },
    ...(f.ours.some((o) => o.inferInt8)
      ? [{
        figure: "Inference, one image, reduced precision: ours (int8-static export) ÷ best bf16 peer",
        goal: MOBILENET_GOALS.infer,
        cell: (o: MobileNetOurs) =>
          o.inferInt8 ? cell(o, (t) => t.infer, o.inferInt8, "bf16") : { text: "not measured" },
      }]
      : []),
    {
      figure: "MFU: our training FLOP/s ÷ ORT MatMul peak",
      cell: (o) => {
        const achieved = gflops(f.model.step.total, o.train.median);
        return { text: `${pct(achieved / o.peak)} (${gf(achieved)} / ${gf(o.peak)} GFLOP/s)` };
      },
    },
  ];
  // A figure without a peer (none ran) has nothing to meet; a measured ratio above its goal misses it.
  const met = (r: SummaryRow) =>
    r.goal === undefined ? "–" : f.ours.every((o) => {
        const { ratio } = r.cell(o);
        return ratio === undefined || ratio <= r.goal!;
      })
      ? "met"
      : "**not met**";
  return table<SummaryRow>([
    { header: "figure", cell: (r) => r.figure },
    { header: "goal", cell: (r) => (r.goal === undefined ? "–" : `≤ ${r.goal}`) },
    ...f.ours.map((o) => ({ header: `T = ${o.threads}`, cell: (r: SummaryRow) => r.cell(o).text })),
    { header: "goal met", cell: met },
  ], figures);
};

const trainTable = (f: MobileNetFigures) =>
  table<Row>([
    { header: "side", cell: (r) => r.label },
    { header: "T", cell: (r) => String(r.threads) },
    { header: "ms per step", cell: (r) => spread(r.train) },
    { header: "ours ÷ side", cell: (r) => (r.isOurs ? "–" : x2(r.ours.train.median / r.train.median)) },
    { header: "GFLOP/s", cell: (r) => gf(gflops(f.model.step.total, r.train.median)) },
    {
      header: "÷ ORT MatMul peak",
      cell: (r) => pct(gflops(f.model.step.total, r.train.median) / r.ours.peak),
    },
    {
      header: "loss before step 1 (rel. diff.)",
      cell: (r) => (r.isOurs
        ? loss(r.losses[0])
        : `${loss(r.losses[0])} (${rel(check(f, r.threads, r.losses).first)})`),
    },
    {
      header: `steps 1–${f.checkSteps}`,
      cell: (r) =>
        r.isOurs
          ? "–"
          : r.precision === "bf16"
          ? "not checked (bf16)"
          : check(f, r.threads, r.losses).passed
          ? "passed"
          : "FAILED",
    },
    {
      header: `largest rel. diff., steps 1–${f.reportSteps}`,
      cell: (r) =>
        r.isOurs ? "–" : rel(
          largestRelativeDifference(
            r.ours.losses.slice(0, f.reportSteps),
            r.losses.slice(0, f.reportSteps),
          ),
        ),
    },
    {
      header: "thread setting",
      cell: (r) =>
        r.config,
    },
    { header: "other load, cores", cell: (r) => fixed(r.load, 2) },
  ], rows(f));

/** The inference rows: ours, then our int8-static export when measured, then the peers, per T. */
const inferRows = (f: MobileNetFigures): Row[] =>
  rows(f).flatMap((r) =>
    r.isOurs && r.ours.inferInt8
      ? [r, { ...r, label: `${r.label}, int8-static export`, infer: r.ours.inferInt8 }]
      : [r]
  );

const inferTable = (f: MobileNetFigures) =>
  table<Row>([
    { header: "side", cell: (r) => r.label },
    { header: "T", cell: (r) => String(r.threads) },
    { header: "ms per image", cell: (r) => spread(r.infer) },
    { header: "ours ÷ side", cell: (r) => (r.isOurs ? "–" : x2(r.ours.infer.median / r.infer.median)) },
    ...(f.ours.some((o) => o.inferInt8)
      ? [{
        header: "ours int8-static ÷ side",
        cell: (
          r: Row,
        ) => (r.isOurs || !r.ours.inferInt8 ? "–" : x2(r.ours.inferInt8.median / r.infer.median)),
      }]
      : []),
    { header: "GFLOP/s", cell: (r) => gf(gflops(f.model.inference.total, r.infer.median)) },
  ], inferRows(f));

const flopTable = (f: MobileNetFigures) => {
  const parts = [
    { part: "training step", s: f.model.step },
    { part: "one-image inference", s: f.model.inference },
  ];
  const share = (x: number, s: FlopSplit) => `${g2(x)} (${pct(x / s.total)})`;
  return table([
    { header: "graph", cell: (r: typeof parts[number]) => r.part },
    { header: "GFLOP", cell: (r: typeof parts[number]) => g2(r.s.total) },
    { header: "matmuls", cell: (r: typeof parts[number]) => share(r.s.matmul, r.s) },
    { header: "dense convolutions", cell: (r: typeof parts[number]) => share(r.s.conv, r.s) },
    { header: "depthwise convolutions", cell: (r: typeof parts[number]) => share(r.s.depthwise, r.s) },
    {
      header: "other (elementwise, reductions)",
      cell: (r: typeof parts[number]) => share(r.s.total - r.s.matmul - r.s.conv - r.s.depthwise, r.s),
    },
  ], parts);
};

export const renderMobileNet = (f: MobileNetFigures): string => {
  const tr = f.trainRepeats, ir = f.inferRepeats;
  const versions = [...new Set(f.sides.map((s) => s.version))];
  const firsts = f.sides.filter((s) => s.side.compiled).map((s) =>
    `${s.side.label} ${fixed(s.firstStepSeconds, 1)} s`
  );
  return [
    `Command: \`${f.command}\` (${f.date}). Machine: ${f.machine}.`,
    "",
    f.loadNote,
    "",
    `The model: ${f.model.description} ${f.model.params.toLocaleString("en-US")} parameters; batch ` +
    `${f.model.batch} of ${f.model.size}×${f.model.size} images (the perf model's synthetic batch: normal ` +
    `noise images, label maps of 16×16-pixel cells). SGD with momentum, no weight decay. The PyTorch side ` +
    "(`bench/peer/segmenter_mobilenet.py`, run by `bench/peer/segmenter_torch2.py`) is the same graph " +
    "written in PyTorch modules: explicit `F.pad` for SAME padding, `groups = channels` depthwise " +
    "`Conv2d`, `F.relu6`, the folded BatchNorm as each conv's bias, and segmenter.py's heads; it loads " +
    "every parameter from the file kappa writes (the backbone's from the ImageNet safetensors through " +
    `kappa's importer). ${versions.join("; ")}.`,
    "",
    "FLOPs, counted on our graphs by the per-op rules (2 per multiply-add in matmuls and convolutions, " +
    `about one per element otherwise; the forward part of the step ${g2(f.model.forward)} GFLOP). ` +
    "Depthwise convolutions do 9 multiply-adds per output element against a matmul's hundreds: they are " +
    "memory-bound, so an MFU against the MatMul peak is low for any framework on this model, and the " +
    "peers' GFLOP/s use the same counts.",
    "",
    flopTable(f),
    "",
    summaryTable(f),
    "",
    `Training step, median (p10–p90) of ${f.rounds} round(s) × ${tr.runs} steps after ${tr.warmup} warm-up ` +
    `steps, each side in its own process per round. Equal work: float32 sides must match our loss before ` +
    `step 1 within ${rel(FIRST_LOSS_TOLERANCE)} relative and over steps 1–${f.checkSteps} within ` +
    `${rel(STEPS_LOSS_TOLERANCE)} (step 2's loss is the first after an update: it checks every ` +
    `parameter's gradient); the largest difference over steps 1–${f.reportSteps} is reported, not checked.`,
    "",
    trainTable(f),
    "",
    ...(firsts.length
      ? [`First step of the compiled sides (tracing and compiling): ${firsts.join(", ")}.`, ""]
      : []),
    `Inference, one ${f.model.size}×${f.model.size} image (ours: the exported ONNX file; PyTorch: eval mode ` +
    `under no_grad, scores, top-κ and the per-pixel class), median (p10–p90) of ${f.rounds} × ${ir.runs} ` +
    `runs after ${ir.warmup} warm-up runs:`,
    "",
    inferTable(f),
    ...(f.missing.length ? ["", `Not measured: ${f.missing.join("; ")}.`] : []),
  ].join("\n");
};
