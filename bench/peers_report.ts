/**
 * The PyTorch 2 and JAX peers' part of `deno task bench perf`'s section: goals per precision class,
 * training and inference tables, compile times, the bf16 sides' loss drift, peak memory and the thread
 * settings each side was measured in. Pure: everything measured comes in as data.
 */
import type { Repeats } from "./measure.ts";
import type { Side } from "./peers.ts";
import { checkEqualWork, FIRST_LOSS_TOLERANCE, rowsByThreads, STEPS_LOSS_TOLERANCE } from "./comparison.ts";
import {
  type Column,
  fixed,
  formatLoss as loss,
  formatMs as ms,
  formatRelative as rel,
  formatSpread as spread,
  table,
} from "../figures/markdown.ts";
import { relativeDifference, type Summary } from "../figures/stats.ts";

/** The issue's goals against the strongest peers. */
export const PEER_GOALS = {
  /** Training step, ours ÷ the best peer of the same precision class, at most (issue 27). */
  train: 0.8,
  /** One-image inference, ours ÷ the best peer, at most. */
  infer: 0.8,
} as const;

export interface SideThread {
  readonly threads: number;
  /** The thread setting it was measured in (the fastest of `tried`). */
  readonly config: string;
  /** Median step ms of every setting tried (empty when not tuned). */
  readonly tried: readonly { readonly label: string; readonly medianMs: number }[];
  readonly train: Summary;
  readonly infer: Summary;
  /** Loss before each step, first round (the first, compiling, step first). */
  readonly losses: readonly number[];
  readonly peakRssMiB: number;
  /** Cores other processes kept busy while it was measured. */
  readonly load: number;
}

export interface SideFigures {
  readonly side: Side;
  /** Framework version and backend, in one line. */
  readonly version: string;
  readonly backend: string;
  readonly byThreads: readonly SideThread[];
  /** Seconds of the first step in the side's first process (tracing and compiling for compiled sides). */
  readonly firstStepSeconds: number;
  /** Loss before each of the first `trackSteps` steps (reduced-precision sides and PyTorch eager). */
  readonly track?: readonly number[];
}

export interface OursThread {
  readonly threads: number;
  readonly train: Summary;
  readonly infer: Summary;
  /** One-image inference of the int8 export (`--quantize int8`), when measured. */
  readonly inferInt8?: Summary;
  readonly losses: readonly number[];
  readonly peakRssMiB: number;
}

export interface PeersFigures {
  readonly sides: readonly SideFigures[];
  /** One line per peer that could not be installed or run. */
  readonly missing: readonly string[];
  readonly ours: readonly OursThread[];
  /** Our float32 losses over the first `trackSteps` steps. */
  readonly ourTrack: readonly number[];
  readonly trackSteps: number;
  readonly checkSteps: number;
  /** The short runs each thread setting was tried with; absent when not tuned (--quick). */
  readonly tuneRepeats?: Repeats;
  /** Whether torch.compile's cache was empty when the run began (else an earlier run compiled). */
  readonly coldCompile?: boolean;
}

const x2 = (v: number) => fixed(v, 2);
const OURS = "kappa (ONNX Runtime)";
const ratio = (ours: Summary, peer: Summary) => ours.median / peer.median;

/** The fastest side of `precision` at `threads` by `pick`, if any ran. */
export const bestSide = <
  T extends { readonly threads: number },
  S extends { readonly side: { readonly precision: Side["precision"] }; readonly byThreads: readonly T[] },
>(
  f: { readonly sides: readonly S[] },
  threads: number,
  pick: (t: T) => Summary,
  precision?: Side["precision"],
): { side: S; at: T } | undefined =>
  f.sides.filter((s) => precision === undefined || s.side.precision === precision)
    .flatMap((side) => side.byThreads.filter((t) => t.threads === threads).map((at) => ({ side, at })))
    .reduce<{ side: S; at: T } | undefined>(
      (b, x) => (b === undefined || pick(x.at).median < pick(b.at).median ? x : b),
      undefined,
    );

/** Ours against the best peer at `threads` (of a precision class): the peer's label, its figure, the ratio. */
export const againstBest = (
  f: PeersFigures,
  threads: number,
  pick: (t: SideThread) => Summary,
  mine: Summary,
  precision?: Side["precision"],
): { readonly label: string; readonly peer: Summary; readonly ratio: number } | undefined => {
  const best = bestSide(f, threads, pick, precision);
  return best && { label: best.side.side.label, peer: pick(best.at), ratio: ratio(mine, pick(best.at)) };
};

const equalWork = (f: PeersFigures, t: SideThread) => {
  const ours = f.ours.find((o) => o.threads === t.threads);
  return checkEqualWork(ours?.losses ?? [], t.losses, f.checkSteps);
};

/** Every fp32 side's step-1 loss agrees with ours (reduced-precision sides are not checked). */
export const peersEqualWork = (f: PeersFigures): boolean =>
  f.sides.every((s) => s.side.precision !== "fp32" || s.byThreads.every((t) => equalWork(f, t).passed));

const goalTable = (f: PeersFigures) => {
  interface Row {
    readonly figure: string;
    readonly goal: number;
    readonly cell: (o: OursThread) => { text: string; met: boolean };
  }
  const against = (
    pick: (t: SideThread) => Summary,
    ours: (o: OursThread) => Summary | undefined,
    goal: number,
    precision?: Side["precision"],
  ) =>
  (o: OursThread) => {
    const mine = ours(o);
    const noPeer = { text: "no peer ran", met: true };
    if (!mine) return bestSide(f, o.threads, pick, precision) ? { text: "not measured", met: false } : noPeer;
    const b = againstBest(f, o.threads, pick, mine, precision);
    if (!b) return noPeer;
    return {
      text: `${x2(b.ratio)} (${ms(mine.median)} / ${ms(b.peer.median)} ms, ${b.label})`,
      met: b.ratio <= goal,
    };
  };
  const rows: Row[] = [
    {
      figure: "Training step, float32: ours ÷ best float32 peer",
      goal: PEER_GOALS.train,
      cell: against((t) => t.train, (o) => o.train, PEER_GOALS.train, "fp32"),
    },
    {
      figure: "Training step, reduced precision: ours (float32; no reduced-precision step) ÷ best bf16 peer",
      goal: PEER_GOALS.train,
      cell: against((t) => t.train, (o) => o.train, PEER_GOALS.train, "bf16"),
    },
    {
      figure: "Inference, one image, float32: ours (exported ONNX) ÷ best float32 peer",
      goal: PEER_GOALS.infer,
      cell: against((t) => t.infer, (o) => o.infer, PEER_GOALS.infer, "fp32"),
    },
    ...(f.ours.some((o) => o.inferInt8)
      ? [{
        figure: "Inference, one image, reduced precision: ours (int8 export) ÷ best bf16 peer",
        goal: PEER_GOALS.infer,
        cell: against((t) => t.infer, (o) => o.inferInt8, PEER_GOALS.infer, "bf16"),
      }]
      : []),
  ];
  return table<Row>([
    { header: "figure", cell: (r) => r.figure },
    { header: "goal", cell: (r) => `≤ ${r.goal}` },
    ...f.ours.map((o): Column<Row> => ({ header: `T = ${o.threads}`, cell: (r) => r.cell(o).text })),
    { header: "goal met", cell: (r) => (f.ours.every((o) => r.cell(o).met) ? "met" : "**not met**") },
  ], rows);
};

interface Line {
  readonly label: string;
  readonly precision: string;
  readonly threads: number;
  readonly config: string;
  readonly train: Summary;
  readonly infer: Summary;
  readonly ours?: OursThread;
  readonly first: string;
  readonly check: string;
  readonly peakRssMiB: number;
  readonly load: string;
}

const lines = (f: PeersFigures): Line[] =>
  rowsByThreads(f.ours, f.sides, (o): Line => ({
    label: OURS,
    precision: "fp32",
    threads: o.threads,
    config: "intra-op threads spin (ORT default)",
    train: o.train,
    infer: o.infer,
    first: loss(o.losses[0]),
    check: "–",
    peakRssMiB: o.peakRssMiB,
    load: "–",
  }), (s, t, o): Line => {
    const w = equalWork(f, t);
    return {
      label: s.side.label,
      precision: s.side.precision,
      threads: t.threads,
      config: t.config,
      train: t.train,
      infer: t.infer,
      ours: o,
      first: `${loss(t.losses[0])} (${rel(w.first)})`,
      check: s.side.precision === "fp32" ? (w.passed ? "passed" : "FAILED") : "not checked (bf16)",
      peakRssMiB: t.peakRssMiB,
      load: fixed(t.load, 2),
    };
  });

const trainTable = (f: PeersFigures) =>
  table<Line>([
    { header: "side", cell: (l) => l.label },
    { header: "T", cell: (l) => String(l.threads) },
    { header: "ms per step", cell: (l) => spread(l.train) },
    { header: "ours ÷ side", cell: (l) => (l.ours ? x2(ratio(l.ours.train, l.train)) : "–") },
    { header: "loss before step 1 (rel. diff.)", cell: (l) => l.first },
    { header: "equal work", cell: (l) => l.check },
    { header: "peak RSS MiB", cell: (l) => fixed(l.peakRssMiB, 0) },
    { header: "other load, cores", cell: (l) => l.load },
  ], lines(f));

/** The inference lines: ours, then our int8 export when measured, then the peers, per T. */
const inferLines = (f: PeersFigures): Line[] =>
  lines(f).flatMap((l) => {
    const o = l.ours ? undefined : f.ours.find((x) => x.threads === l.threads);
    return o?.inferInt8 && l.label === OURS
      ? [l, { ...l, label: `${OURS}, int8 export`, infer: o.inferInt8 }]
      : [l];
  });

const inferTable = (f: PeersFigures) =>
  table<Line>([
    { header: "side", cell: (l) => l.label },
    { header: "T", cell: (l) => String(l.threads) },
    { header: "ms per image", cell: (l) => spread(l.infer) },
    { header: "ours ÷ side", cell: (l) => (l.ours ? x2(ratio(l.ours.infer, l.infer)) : "–") },
    ...(f.ours.some((o) => o.inferInt8)
      ? [{
        header: "ours int8 ÷ side",
        cell: (l: Line) => (l.ours?.inferInt8 ? x2(ratio(l.ours.inferInt8, l.infer)) : "–"),
      }]
      : []),
  ], inferLines(f));

const configTable = (f: PeersFigures) => {
  const rows = f.sides.flatMap((s) => s.byThreads.map((t) => ({ s, t })));
  return table<(typeof rows)[number]>([
    { header: "side", cell: (r) => r.s.side.label },
    { header: "T", cell: (r) => String(r.t.threads) },
    { header: "measured in", align: "left", cell: (r) => r.t.config },
    {
      header: "median ms of each setting tried",
      cell: (r) => r.t.tried.map((c) => `${c.label}: ${ms(c.medianMs)}`).join("; ") || "not tuned",
    },
  ], rows);
};

const driftTable = (f: PeersFigures) => {
  const n = f.trackSteps;
  const rows = f.sides.filter((s) => s.track?.length);
  const drift = (track: readonly number[]) =>
    Math.max(...track.slice(0, n).map((l, i) => relativeDifference(l, f.ourTrack[i])));
  return table<SideFigures>([
    { header: "side", cell: (s) => s.side.label },
    { header: "loss step 1", cell: (s) => loss(s.track![0]) },
    { header: `loss step ${n}`, cell: (s) => loss(s.track![n - 1]) },
    { header: `ours (float32) step ${n}`, cell: () => loss(f.ourTrack[n - 1]) },
    { header: `largest rel. diff. from ours, steps 1–${n}`, cell: (s) => rel(drift(s.track!)) },
  ], rows);
};

/** The peers' subsection of the perf section (level-3 headings). */
export const renderPeers = (f: PeersFigures): string => {
  const compiled = f.sides.filter((s) => s.side.compiled);
  const backends = f.sides.map((s) => `${s.side.label}: ${s.version}, ${s.backend}`);
  const tune = f.tuneRepeats
    ? `each side's thread settings were tried at each T (one process each, ${f.tuneRepeats.warmup} warm-up ` +
      `and ${f.tuneRepeats.runs} timed steps) and the fastest measured in the rounds`
    : "thread settings were not tuned (--quick): each side ran in its first setting";
  return `
### PyTorch 2 and JAX peers

The same model, initial parameters and batch in PyTorch 2 (eager, \`torch.compile\`, both also under bf16
autocast: matmuls in bf16, parameters, gradients, momentum and the loss in float32) and JAX (the whole step —
forward, losses, gradient, SGD-momentum update — in one \`jax.jit\` function), from the virtual environment the
bench manages (\`bench/.venv-peers\`, \`bench/peer/segmenter_torch2.py\`, \`bench/peer/segmenter_jax.py\`). Each
side runs in its own process per measurement, in the same alternating rounds as above; ${tune}.
${f.missing.length ? `\nNot measured: ${f.missing.join("; ")}.\n` : ""}
${backends.map((b) => `- ${b}`).join("\n")}

${goalTable(f)}

Training step, median (p10–p90) over the rounds; float32 sides must match our loss before step 1 within
${rel(FIRST_LOSS_TOLERANCE)} relative and over steps 1–${f.checkSteps} within ${rel(STEPS_LOSS_TOLERANCE)}.
Peak RSS: the process's VmHWM after its training steps (runtime, model, optimizer state and the steps;
ours in a Deno process of its own).

${trainTable(f)}

${
    compiled.length
      ? `First step in each side's first process (tracing and compiling; ${
        f.coldCompile === false
          ? "torch.compile's cache held an earlier run's kernels"
          : "torch.compile's cache empty"
      }), reported apart from the steady state above: ${
        compiled.map((s) => `${s.side.label} ${fixed(s.firstStepSeconds, 1)} s`).join(", ")
      }.`
      : ""
  }

Inference, one image (each side's own eval forward: scores, top-κ and the per-pixel class)${
    f.ours.some((o) => o.inferInt8)
      ? "; our int8 export (`--quantize int8`: the parameters' matmuls in int8, activations quantized at run " +
        "time) is measured in our turn, and its ratio is the reduced-precision class's against the bf16 sides"
      : ""
  }:

${inferTable(f)}

Reduced precision: the loss over the first ${f.trackSteps} steps (T = ${
    f.ours.at(-1)?.threads ?? 1
  }) against our float32 run; PyTorch eager float32 beside them shows how far two float32 runs drift.

${driftTable(f)}

Thread settings:

${configTable(f)}
`;
};
