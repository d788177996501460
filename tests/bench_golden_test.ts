/**
 * Golden outputs of the bench renderers: fixed synthetic measurement records in, the exact Markdown out,
 * compared byte for byte with tests/fixtures/bench_golden/. They pin what BENCHMARKS.md and the terminal
 * show, so the renderers can be restructured without running a benchmark (the grids' RESULTS.md
 * renderers: tests/grids_golden_test.ts).
 * The fixtures are .txt so that `deno fmt` leaves them as the renderers wrote them.
 *
 * After an intended change of the output: `UPDATE_GOLDEN=1 deno test -A tests/bench_golden_test.ts`,
 * then read the fixtures' diff.
 */
import { goldenIn } from "./golden.ts";
import { type PerfFigures, type PerfThread, renderPerf } from "../bench/perf_report.ts";
import { type PeersFigures, renderPeers, type SideThread } from "../bench/peers_report.ts";
import { SIDES } from "../bench/peers.ts";
import { type EngineFigures, renderEngine, type ThreadFigures } from "../bench/report.ts";
import { type DataBenchResult, renderData } from "../bench/data.ts";
import { MLP } from "../bench/mlp.ts";
import type { StepProfile } from "../bench/profile.ts";
import type { Summary } from "../figures/stats.ts";

const golden = goldenIn(new URL("./fixtures/bench_golden/", import.meta.url));

const spread = (median: number, p10 = 0.9 * median, p90 = 1.2 * median): Summary => ({
  median,
  p10,
  p90,
  runs: 15,
});

const machine = { cpu: "Test CPU (family 25, model 17; AVX-512)", cores: 2, memoryGiB: 24, ort: "1.30.0" };

// ---------------------------------------------------------------------------------------------------
// bench perf

const stepProfile = (wallMs: number, runMs: number, faults: number): StepProfile => ({
  runMs,
  kernelMs: runMs - 31.5,
  matmulMs: runMs / 2.25,
  wallMs,
  outsideMs: wallMs - runMs,
  faultsPerStep: faults,
  components: [
    { component: "backbone", forwardMs: 120.25, backwardMs: 240.5 },
    { component: "ψ + τ", forwardMs: 8.125, backwardMs: 15.75 },
    { component: "inserted by ONNX Runtime", forwardMs: 3.5, backwardMs: 0 },
  ],
});

const busyThread: PerfThread = {
  threads: 1,
  peak: 91.37,
  train: { ours: spread(912.4, 880.1, 960.7), peer: spread(1003.9, 990.2, 1051.3) },
  infer: { ours: spread(61.83), peer: spread(98.4) },
  ourLosses: [2.4849066, 2.4712, 2.45502, 2.43117, 2.4066, 2.38, 2.35, 2.33],
  peerLosses: [2.4849068, 2.47121, 2.455, 2.4312, 2.40661, 2.3801, 2.3502, 2.3299],
  load: { ours: 0.42, peer: 0.05 },
  overhead: { before: stepProfile(960, 830, 5123.4), after: stepProfile(905, 830, 12.6) },
  quickstartStep: spread(142.7),
  inferProfile: { runMs: 58.2, kernelMs: 55.9, matmulMs: 31.4 },
};

const perfFigures: PerfFigures = {
  date: "2026-11-01",
  seconds: 1834.5,
  machine,
  torch: "1.13.1",
  blas: "OpenBLAS 0.3.21 (pthreads)",
  peerThreads: "T=1: torch 1, OpenBLAS 1; T=2: torch 2, OpenBLAS 2",
  model: {
    description: "Segmenter + RankSeg: a small test model.",
    params: 5_634_123,
    stateFloats: 11_268_246,
    batch: 4,
    size: 256,
    step: { forward: 1.234e10, step: 3.512e10, matmul: 3.101e10 },
    inference: { forward: 3.08e9, step: 3.08e9, matmul: 2.71e9 },
  },
  quickstart: {
    description: "ConvNet backbone, ψ = Linear, batch 4, crop 128×128, SGD",
    batch: 4,
    crop: [128, 128],
  },
  rounds: 3,
  trainRepeats: { warmup: 3, runs: 5 },
  inferRepeats: { warmup: 5, runs: 20 },
  profileRepeats: { warmup: 3, runs: 5 },
  vocabRepeats: { warmup: 3, runs: 15 },
  checkSteps: 5,
  quietWait: { start: 60, turn: 5 },
  byThreads: [busyThread, {
    ...busyThread,
    threads: 2,
    peak: 170.2,
    train: { ours: spread(530.2), peer: spread(601.7) },
    infer: { ours: spread(40.1), peer: spread(51.3) },
    load: { ours: 0.02, peer: 0.01 },
    overhead: { before: stepProfile(600, 480, 5000), after: stepProfile(612, 480, 11) },
    quickstartStep: spread(80.5),
    withoutSpinning: { train: spread(548.9), infer: spread(39.2), load: 0.07 },
  }],
  agreement: { classes: 0.99987, selectedEqual: true, scores: 3.2e-6, logits: 1.7e-5 },
  vocab: [
    ...[150, 847, 1284, 21841].map((classes, i) => ({
      variant: "ranksegGap" as const,
      classes,
      params: 300_000 + classes * 193,
      flops: 1.5e8 + classes * 4e4,
      runs: [1, 2].map((threads) => ({
        threads,
        ms: spread(12.5 + i / threads),
        peakRssMiB: 210.4 + i,
        rssBeforeSessionMiB: 140.2,
      })),
    })),
    { variant: "ranksegEncoder", classes: 21841, params: 4_500_000, flops: 9e11 },
    ...[150, 21841].map((classes) => ({
      variant: "fullK" as const,
      classes,
      params: 193 * classes,
      flops: 2 * 256 * 192 * classes,
      runs: [1, 2].map((threads) => ({
        threads,
        ms: spread(classes / (100 * threads)),
        peakRssMiB: 200 + classes / 100,
        rssBeforeSessionMiB: 139.8,
      })),
    })),
  ],
  vocabSetting: { kappa: 100, dim: 192, grid: 16 },
  loaders: {
    quickstart: { label: "quickstart", batch: 4, crop: [128, 128], workers: 1, imagesPerSecond: 61.4 },
    perf: { label: "perf model", batch: 4, crop: [256, 256], workers: 2, imagesPerSecond: 22.8 },
  },
  graphs: [
    {
      name: "training step",
      emitted: new Map([["MatMul", 120], ["Add", 90], ["Mul", 200], ["Transpose", 40], ["Softmax", 6]]),
      optimized: new Map([
        ["MatMul", 60],
        ["com.microsoft.FusedMatMul", 50],
        ["Gemm", 10],
        ["Add", 70],
        ["Mul", 180],
        ["Transpose", 44],
        ["Softmax", 6],
      ]),
    },
    {
      name: "exported model",
      emitted: new Map([["MatMul", 40], ["Add", 30], ["Erf", 6]]),
      optimized: new Map([["MatMul", 40], ["Add", 24], ["com.microsoft.BiasGelu", 6]]),
    },
  ],
};

/** Every goal met on a quiet machine, and no spinning run. */
const quietPerf: PerfFigures = {
  ...perfFigures,
  byThreads: perfFigures.byThreads.map((t) => ({
    ...t,
    peak: 40,
    train: { ours: spread(700), peer: spread(1000) },
    infer: { ours: spread(40), peer: spread(100) },
    load: { ours: 0.01, peer: 0 },
    overhead: { before: stepProfile(960, 830, 5000), after: stepProfile(900, 830, 10) },
    quickstartStep: spread(400),
    withoutSpinning: undefined,
  })),
  loaders: {
    quickstart: { ...perfFigures.loaders.quickstart, imagesPerSecond: 200 },
    perf: { ...perfFigures.loaders.perf, imagesPerSecond: 200 },
  },
  graphs: [],
};

Deno.test("golden: renderPerf, a busy run with unmet goals, spinning off at T = 2", () =>
  golden("perf_busy.txt", renderPerf(perfFigures)));

Deno.test("golden: renderPerf, a quiet run with every goal met", () =>
  golden("perf_quiet.txt", renderPerf(quietPerf)));

// The PyTorch 2 and JAX peers: every side at T = 1 and 2, one fp32 side off by more than the tolerance.
const sideThread = (threads: number, trainMs: number, inferMs: number, first: number): SideThread => ({
  threads,
  config: threads === 1 ? "OMP_WAIT_POLICY=PASSIVE" : "OpenMP default (idle threads spin)",
  tried: [
    { label: "OpenMP default (idle threads spin)", medianMs: trainMs * 1.02 },
    { label: "OMP_WAIT_POLICY=PASSIVE", medianMs: threads === 1 ? trainMs : trainMs * 1.3 },
  ],
  train: spread(trainMs),
  infer: spread(inferMs),
  losses: [first, 4.66052, 4.38294, 4.1, 3.9, 3.7],
  peakRssMiB: 890.4 + threads,
  load: 0.03 * threads,
});

const peersFigures: PeersFigures = {
  sides: SIDES.map((side, i) => ({
    side,
    version: side.framework === "jax" ? "JAX 0.10.2" : "PyTorch 2.13.0+cpu",
    backend: side.framework === "jax" ? "XLA:CPU, jaxlib 0.10.2" : "BLAS mkl; oneDNN v3.12.0",
    firstStepSeconds: 12.5 + i,
    track: side.name === "jax" || side.name === "compile"
      ? undefined
      : Array.from({ length: 30 }, (_, s) => 5.925 - 0.05 * s + (side.precision === "bf16" ? 0.002 * s : 0)),
    byThreads: [
      sideThread(1, 800 + 100 * i, 50 + 5 * i, side.name === "jax" ? 5.93 : 5.925106),
      sideThread(2, 470 + 60 * i, 31 + 3 * i, side.precision === "bf16" ? 5.92499 : 5.925107),
    ],
  })),
  missing: ["Debian PyTorch 1.13: apt-get failed"],
  ours: [1, 2].map((threads) => ({
    threads,
    train: spread(threads === 1 ? 809 : 471),
    infer: spread(threads === 1 ? 47.5 : 30.7),
    losses: [5.925108, 4.66052, 4.38294, 4.1, 3.9, 3.7],
    peakRssMiB: 700 + threads,
  })),
  ourTrack: Array.from({ length: 30 }, (_, s) => 5.925 - 0.05 * s),
  trackSteps: 30,
  checkSteps: 5,
  tuneRepeats: { warmup: 2, runs: 3 },
};

Deno.test("golden: renderPeers, every side at T = 1 and 2, JAX off by more than the tolerance", () =>
  golden("peers.txt", renderPeers(peersFigures)));

Deno.test("golden: renderPeers with our int8 export's inference (the reduced-precision class)", () =>
  golden(
    "peers_int8.txt",
    renderPeers({
      ...peersFigures,
      ours: peersFigures.ours.map((o) => ({ ...o, inferInt8: spread(o.threads === 1 ? 30.9 : 20.6) })),
    }),
  ));

Deno.test("golden: renderPerf with the peers appended", () =>
  golden("perf_with_peers.txt", renderPerf({ ...quietPerf, peers: peersFigures })));

// ---------------------------------------------------------------------------------------------------
// bench engine

const engineThread = (threads: number, stepMs: number, load: number, profiled: boolean): ThreadFigures => ({
  threads,
  matmul: [256, 1024].map((n) => ({
    n,
    threads,
    ms: spread(n / 100 / threads),
    outputMs: spread(0.04 * threads),
    gflops: 40.25 * threads + n / 1000,
    rawGflops: 38.5 * threads,
  })),
  peerMatmul: [{ n: 1024, ms: spread(25.6 / threads) }],
  ours: spread(stepMs),
  peer: spread(1.3 * stepMs),
  ourLosses: [2.3025851, 2.29, 2.27, 2.25, 2.23, 2.2, 2.18, 2.1, 2.05, 2.0, 1.95, 1.9],
  peerLosses: [2.3025853, 2.2900003, 2.27, 2.25, 2.23, 2.2, 2.18, 2.1, 2.05, 2.0, 1.95, 1.9],
  stateMs: spread(2.15),
  faultsPerStep: 1234.5,
  openblasThreads: threads === 1 ? 1 : null,
  torchThreads: threads,
  load: { ours: load, peer: load / 2 },
  profile: profiled ? stepProfile(stepMs, stepMs - 3.5, 1234.5) : undefined,
});

const engineFigures: EngineFigures = {
  date: "2026-11-01",
  seconds: 412.7,
  machine,
  torch: "1.13.1",
  blas: "OpenBLAS 0.3.21",
  spec: MLP,
  flops: { forward: 1.05e9, step: 2.71e9, matmul: 2.6e9 },
  stateFloats: 3_712_000,
  checkSteps: 5,
  rounds: 4,
  stepRepeats: { warmup: 2, runs: 10 },
  matmulRepeats: { warmup: 3, runs: 10 },
  profileRuns: 20,
  quietWait: { start: 60, turn: 5 },
  byThreads: [engineThread(1, 48.7, 0.31, true), engineThread(2, 27.3, 0.02, false)],
};

Deno.test("golden: renderEngine, busy, one thread count without a profile", () =>
  golden("engine_busy.txt", renderEngine(engineFigures)));

Deno.test("golden: renderEngine, quiet, a failed equal work check", () =>
  golden(
    "engine_quiet.txt",
    renderEngine({
      ...engineFigures,
      byThreads: engineFigures.byThreads.map((t) => ({
        ...t,
        load: { ours: 0.03, peer: 0 },
        peerLosses: [2.31, ...t.peerLosses.slice(1)],
      })),
    }),
  ));

// ---------------------------------------------------------------------------------------------------
// bench data

const dataResult: DataBenchResult = {
  machine: "Test CPU, 2 cores, Deno 2.9.6, sharp 0.35.5 / libvips 8.17.0",
  cores: 2,
  batchSize: 8,
  measuredBatches: 10,
  throughput: ["camvid", "coco133"].flatMap((dataset) =>
    [256, 512].flatMap((crop) =>
      [0, 1, 2].map((workers) => ({
        dataset,
        crop,
        workers,
        concurrency: 16,
        imagesPerSecond: (dataset === "camvid" ? 30 : 20) * (1 + workers / 2) * (256 / crop) + 0.04,
      }))
    )
  ),
  decodeOverlap: { images: 64, decodeMs: 512.34, busyMs: 512.34, togetherMs: 801.26, overlap: 0.4361 },
  stepOverlap: ["onnxruntime-node `session.run` (two 1448² MatMuls, 1 thread)", "synchronous busy loop"]
    .flatMap((consumer) =>
      [0, 1, 2].map((workers) => ({
        consumer,
        workers,
        stepMs: 180.26,
        stepUnderLoadMs: 190.44 + 10 * workers,
        periodMs: 420.07 - 100 * workers,
        imagesPerSecond: 8000 / (420.07 - 100 * workers),
        hidden: 0.125 + 0.3 * workers,
      }))
    ),
};

Deno.test("golden: renderData", () => golden("data.txt", renderData(dataResult)));
