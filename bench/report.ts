/**
 * The engine benchmark's figures and their Markdown rendering (printed, and written as the "Engine"
 * section of BENCHMARKS.md). Pure: everything measured comes in as data.
 */
import type { Machine } from "./machine.ts";
import type { MatmulFigures, Repeats } from "./measure.ts";
import type { MlpSpec, StepFlops } from "./mlp.ts";
import type { StepProfile } from "./profile.ts";
import { QUIET_LOAD } from "./load.ts";
import {
  FIRST_LOSS_TOLERANCE,
  loadColumn,
  lossTable,
  sideBySideColumns,
  STEPS_LOSS_TOLERANCE,
  threadsColumn,
} from "./comparison.ts";
import {
  fixed,
  formatMs as ms,
  formatPercent as pct,
  formatRelative as rel,
  formatSpread as spread,
  table,
} from "../figures/markdown.ts";
import { gflops, type Summary } from "../figures/stats.ts";

export const COMMAND = "npx --yes deno@2.9.6 task bench engine";

export interface ThreadFigures {
  readonly threads: number;
  readonly matmul: readonly MatmulFigures[];
  /** torch.mm at the same sizes. */
  readonly peerMatmul: readonly { readonly n: number; readonly ms: Summary }[];
  /** Milliseconds per training step. */
  readonly ours: Summary;
  readonly peer: Summary;
  /** Loss before each step, from the same initial parameters and batch. */
  readonly ourLosses: readonly number[];
  readonly peerLosses: readonly number[];
  /** Milliseconds per run of the state round trip graph (same state, no compute). */
  readonly stateMs: Summary;
  /** Minor page faults per timed step of ours, averaged over the rounds. */
  readonly faultsPerStep: number;
  readonly openblasThreads: number | null;
  readonly torchThreads: number;
  /** Cores other processes kept busy on average while each side was measured. */
  readonly load: { readonly ours: number; readonly peer: number };
  /** ORT's profile of our step (taken after the rounds). */
  readonly profile?: StepProfile;
}

export interface EngineFigures {
  readonly date: string;
  readonly seconds: number;
  readonly machine: Machine;
  readonly torch: string;
  readonly blas: string;
  readonly spec: MlpSpec;
  readonly flops: StepFlops;
  readonly stateFloats: number;
  readonly checkSteps: number;
  /** Rounds alternating ours and PyTorch; repeats are per round. */
  readonly rounds: number;
  readonly stepRepeats: Repeats;
  readonly matmulRepeats: Repeats;
  readonly profileRuns: number;
  /** Seconds the bench waits at most for other processes to go quiet: at the start, before each turn. */
  readonly quietWait: { readonly start: number; readonly turn: number };
  readonly byThreads: readonly ThreadFigures[];
}

/** The best MatMul GFLOP/s (copy subtracted) at one thread count: the divisor of MFU. */
export const peakOf = (t: ThreadFigures): number => Math.max(...t.matmul.map((m) => m.gflops));

const matmulTable = (f: EngineFigures) => {
  type Row = { readonly t: ThreadFigures; readonly m: MatmulFigures };
  const peer = ({ t, m }: Row) => t.peerMatmul.find((p) => p.n === m.n);
  return table<Row>([
    { header: "threads", cell: ({ t }) => String(t.threads) },
    { header: "n", cell: ({ m }) => String(m.n) },
    { header: "ORT ms", cell: ({ m }) => spread(m.ms) },
    { header: "output-only ms", cell: ({ m }) => ms(m.outputMs.median) },
    { header: "ORT GFLOP/s", cell: ({ m }) => fixed(m.gflops, 1) },
    { header: "ORT GFLOP/s, copy included", cell: ({ m }) => fixed(m.rawGflops, 1) },
    { header: "torch.mm ms", cell: (r) => (peer(r) ? spread(peer(r)!.ms) : "–") },
    {
      header: "torch.mm GFLOP/s",
      cell: (r) => (peer(r) ? fixed(gflops(2 * r.m.n ** 3, peer(r)!.ms.median), 1) : "–"),
    },
  ], f.byThreads.flatMap((t) => t.matmul.map((m) => ({ t, m }))));
};

const stepTable = (f: EngineFigures) =>
  table<ThreadFigures>([
    threadsColumn,
    ...sideBySideColumns((t: ThreadFigures) => t, f.flops.step),
    { header: "MFU (ours ÷ MatMul peak)", cell: (t) => pct(gflops(f.flops.step, t.ours.median) / peakOf(t)) },
    loadColumn(),
  ], f.byThreads);

const overheadTable = (f: EngineFigures) => {
  const outside = (t: ThreadFigures) => (t.profile ? t.ours.median - t.profile.runMs : NaN);
  const profiled =
    (cell: (p: StepProfile) => string) => (t: ThreadFigures) => (t.profile ? cell(t.profile) : "–");
  return table<ThreadFigures>([
    threadsColumn,
    { header: "step ms", cell: (t) => ms(t.ours.median) },
    { header: "in session.run", cell: profiled((p) => ms(p.runMs)) },
    { header: "MatMul kernels", cell: profiled((p) => ms(p.matmulMs)) },
    { header: "other kernels", cell: profiled((p) => ms(p.kernelMs - p.matmulMs)) },
    { header: "outside session.run", cell: (t) => ms(outside(t)) },
    { header: "outside share", cell: (t) => pct(outside(t) / t.ours.median) },
    { header: "page faults / step", cell: (t) => fixed(t.faultsPerStep, 0) },
    { header: "state in/out ms", cell: (t) => ms(t.stateMs.median) },
    { header: "state in/out share", cell: (t) => pct(t.stateMs.median / t.ours.median) },
  ], f.byThreads);
};

const loadNote = (f: EngineFigures): string => {
  const worst = Math.max(...f.byThreads.flatMap((t) => [t.load.ours, t.load.peer]).filter(Number.isFinite));
  return worst > QUIET_LOAD
    ? `**Other processes were busy during this run** (up to ${
      fixed(worst, 2)
    } of ${f.machine.cores} cores, ` +
      `see the last column below): the figures, at T = ${f.machine.cores} above all, are slower than on a quiet ` +
      `machine; the alternating rounds spread the disturbance over both sides.`
    : `The machine was quiet: other processes kept at most ${fixed(Math.max(0, worst), 2)} cores busy.`;
};

/** The body of the "Engine" section. */
export const renderEngine = (f: EngineFigures): string => {
  const { widths, batch, lr, momentum } = f.spec;
  const mm = f.matmulRepeats, st = f.stepRepeats;
  const threads = f.byThreads.map((t) => t.threads).join(" and "), stateM = fixed(f.stateFloats / 1e6, 2);
  const [firstTolerance, stepsTolerance] = [rel(FIRST_LOSS_TOLERANCE), rel(STEPS_LOSS_TOLERANCE)];
  const threadCounts = f.byThreads
    .map((t) => `T=${t.threads}: torch ${t.torchThreads}, OpenBLAS ${t.openblasThreads ?? "?"}`).join("; ");
  return `
Command: \`${COMMAND}\` (${f.date}, ${fixed(f.seconds, 0)} s in all).

- Machine: ${f.machine.cpu}, ${f.machine.cores} cores, ${f.machine.memoryGiB} GiB.
- Ours: onnxruntime-node ${f.machine.ort}, CPU execution provider, graph optimization "all",
  intraOpNumThreads = T.
- PyTorch: ${f.torch} (Debian \`python3-torch\`, eager), \`torch.set_num_threads(T)\` and OpenBLAS threads = T
  (reported: ${threadCounts}), \`OMP_WAIT_POLICY=PASSIVE\`: PyTorch's OpenMP threads and OpenBLAS's
  pthreads are two pools on the same cores, and spinning OpenMP threads made PyTorch's T = 2 step about
  2.5× slower and erratic here.
- BLAS used by PyTorch: ${f.blas}.
- T = ${threads} threads, the same for both sides. The sides never run at
  the same time: ${f.rounds} rounds, each measuring ours then PyTorch at every T; samples are pooled over
  the rounds. Before each turn the bench waits up to ${f.quietWait.turn} s (${f.quietWait.start} s at the start) for
  other processes to use less than ${QUIET_LOAD} cores.

${loadNote(f)}

### MatMul through ONNX Runtime (float32, n×n · n×n)

${matmulTable(f)}

Per round: median (p10–p90) of ${mm.runs} runs after ${mm.warmup} warm-up runs; the best of the ${f.rounds} rounds
is shown. ONNX Runtime copies every output into a new JS array, so a graph that only returns an n×n
output (Expand of a fed scalar) is timed as well and its median subtracted: "ORT GFLOP/s" =
2n³ / (ORT ms − output-only ms). The MatMul peak, MFU's divisor, is the best of these per T
(\`matmulPeak(threads)\` in \`bench/measure.ts\`). torch.mm writes into a preallocated output.

### MLP training step, ours vs PyTorch

MLP ${widths.join(" → ")} (ReLU), batch ${batch}, float32, softmax cross-entropy, SGD momentum ${momentum},
lr ${lr}. One step = forward + backward + update. Ours is one ONNX graph (\`minimize\`, which also computes
the gradient norm); PyTorch runs \`loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)\`. Median
(p10–p90) of ${f.rounds} × ${st.runs} steps, each round after ${st.warmup} warm-up steps, the same batch every step.
Lower ratios are better for us.

${stepTable(f)}

- FLOPs per step: ${fixed(f.flops.step / 1e9, 3)} GFLOP, counted on our graph (forward, backward and update
  nodes); forward alone ${fixed(f.flops.forward / 1e9, 3)} GFLOP. The usual 3 × forward estimate would say
  ${fixed((3 * f.flops.forward) / 1e9, 3)}, but the first layer needs no input gradient. Both GFLOP/s columns
  use the counted figure; MFU divides ours by the MatMul peak at the same T.
- Other load: cores that other processes kept busy while each side was measured (from /proc/stat).

### Per-step overhead of our runtime

Where our step's time goes. "In session.run" and the kernel times come from ONNX Runtime's own profile
(medians of ${f.profileRuns} profiled steps per T, after the rounds); "outside session.run" is the timed step's
median minus that: binding the feeds, copying every output (the whole updated state, ${stateM} M floats
of parameters and momentum) into fresh JS arrays, and our runtime's bookkeeping. A fresh array that lands
on pages the process has not used yet costs a page fault per 4 KiB (the kernel maps and zeroes the page);
"page faults / step" counts them over the timed steps. "State in/out" times a graph over the same state
that returns it unchanged: the same feeding and copying, with no compute.

${overheadTable(f)}

### Equal work check

Both sides start from our initial parameters (written to a safetensors file; weights transposed to
PyTorch's [out, in]) and see the same batch. Loss before each step (first round):

${lossTable(f.byThreads, f.checkSteps, f.stepRepeats.warmup + f.stepRepeats.runs, true)}

Tolerances: ${firstTolerance} relative before the first update, ${stepsTolerance} over the first
${f.checkSteps} steps.
`;
};
