/** The engine benchmark's pure pieces: statistics, Markdown sections, /proc parsing, pooling, the loss check. */
import { pairRatios, parseSide } from "../bench/ab.ts";
import { assert, assertClose, assertEquals } from "./assert.ts";
import { quantile, relativeDifference, summarize } from "../figures/stats.ts";
import { type Column, replaceSection, replaceSubsection, table } from "../figures/markdown.ts";
import { averageLoad, machineBusySeconds, minorFaults, otherLoad, processSeconds } from "../bench/load.ts";
import { describeCpu } from "../bench/machine.ts";
import { checkEqualWork } from "../bench/comparison.ts";
import { type EngineFigures, renderEngine } from "../bench/report.ts";
import { poolRounds, type Round } from "../bench/rounds.ts";
import type { MatmulFigures } from "../bench/measure.ts";
import type { PeerResult } from "../bench/peer.ts";
import { runsOfTrace } from "../bench/profile.ts";
import { MLP } from "../bench/mlp.ts";

Deno.test("summarize: median and p10/p90 interpolate between order statistics", () => {
  // Sorted 1..11: positions 0.1·10 = 1 → 2, 0.5·10 = 5 → 6, 0.9·10 = 9 → 10.
  assertEquals(summarize([11, 3, 1, 2, 5, 4, 7, 6, 9, 8, 10]), { median: 6, p10: 2, p90: 10, runs: 11 });
  assertEquals(quantile([10, 20], 0.5), 15);
  assertEquals(quantile([7], 0.9), 7);
  assert(Number.isNaN(quantile([], 0.5)));
  assertClose(relativeDifference(2.0000002, 2), 1e-7, { rtol: 1e-3 });
  assertEquals(relativeDifference(0.5, 0), 0.5);
});

Deno.test("replaceSection at level 1: a RESULTS.md part ends at the next level-1 title, its level-2 sections inside", () => {
  const doc = "# RankSeg\n\n## camvid\n\nold\n\n# LarvSeg\n\n## ccp\n\nkept\n";
  assertEquals(
    replaceSection(doc, "RankSeg", "## camvid\n\nnew", 1),
    "# RankSeg\n\n## camvid\n\nnew\n\n# LarvSeg\n\n## ccp\n\nkept\n",
  );
  assertEquals(replaceSection("", "LarvSeg", "x", 1), "# LarvSeg\n\nx\n");
  assertEquals(replaceSection("# RankSeg\n\na\n", "Panoptic", "p", 1), "# RankSeg\n\na\n\n# Panoptic\n\np\n");
});

Deno.test("replaceSection rewrites only its own section, or appends it", () => {
  const doc =
    "# Benchmarks\n\nintro\n\n## Data\n\ndata figures\n\n## Engine\n\nold\n\n## Eval\n\neval figures\n";
  assertEquals(
    replaceSection(doc, "Engine", "new\n"),
    "# Benchmarks\n\nintro\n\n## Data\n\ndata figures\n\n## Engine\n\nnew\n\n## Eval\n\neval figures\n",
  );
  // Section last: everything after it is replaced.
  assertEquals(replaceSection("## Engine\n\nold\n### sub\nx\n", "Engine", "new"), "## Engine\n\nnew\n");
  assertEquals(
    replaceSection("# Benchmarks\n\n## Data\n\nd\n", "Engine", "e"),
    "# Benchmarks\n\n## Data\n\nd\n\n## Engine\n\ne\n",
  );
  assertEquals(replaceSection("", "Engine", "e"), "# Benchmarks\n\n## Engine\n\ne\n");
  // A longer heading that starts the same is another section.
  assertEquals(
    replaceSection("## Engine details\n\nx\n", "Engine", "e"),
    "## Engine details\n\nx\n\n## Engine\n\ne\n",
  );
});

Deno.test("table pads its columns and right-aligns every column after the first", () => {
  const columns: Column<{ name: string; ms: number }>[] = [
    { header: "name", cell: (r) => r.name },
    { header: "ms", cell: (r) => String(r.ms) },
  ];
  const rows = [{ name: "ours", ms: 1.5 }, { name: "PyTorch", ms: 12.25 }];
  assertEquals(
    table(columns, rows),
    [
      "| name    |    ms |",
      "| ------- | ----: |",
      "| ours    |   1.5 |",
      "| PyTorch | 12.25 |",
    ].join("\n"),
  );
  // Unpadded, for hand-written documents: alignment only in the rule ("plain"), or none ("bare").
  assertEquals(
    table([columns[0], { ...columns[1], align: "left" }, columns[1]], rows.slice(0, 1), "plain"),
    "| name | ms | ms |\n| --- | --- | ---: |\n| ours | 1.5 | 1.5 |",
  );
  assertEquals(table(columns, rows.slice(0, 1), "bare"), "| name | ms |\n|---|---|\n| ours | 1.5 |");
});

Deno.test("/proc parsing: machine busy time and a process's own and children's CPU time", () => {
  // user nice system idle iowait irq softirq steal …, in 1/100 s.
  assertEquals(machineBusySeconds("cpu  1000 5 300 9000 40 0 20 75 0 0\ncpu0 1 2 3 4\n"), 14);
  // Fields 14–17 (utime stime cutime cstime) after a command name containing ") (".
  const stat = "42 (a) (b) S 1 42 42 0 -1 4194304 99 0 0 0 150 50 200 100 20 0 1 0 1 2 3";
  assertEquals(processSeconds(stat), 5);
  assertEquals(minorFaults(stat), 99);
  const before = { wallSeconds: 10, machineBusy: 100, own: 40 };
  assertEquals(otherLoad(before, { wallSeconds: 12, machineBusy: 104, own: 42 }), 1);
  assertEquals(otherLoad(before, { wallSeconds: 12, machineBusy: 102, own: 42.5 }), 0); // never negative
  assertEquals(
    averageLoad([{ cores: 1, seconds: 3 }, { cores: 0, seconds: 1 }, { cores: NaN, seconds: 0 }]),
    0.75,
  );
  assert(Number.isNaN(averageLoad([])));
});

Deno.test("replaceSubsection: one level-3 section per machine inside its level-2 section, the others kept", () => {
  const doc = "# B\n\n## A\n\na\n\n## Reduced\n\nintro\n\n### cpu1\n\nx\n\n## C\n\nc\n";
  // A new machine's subsection goes at the end of its parent, before the next level-2 section.
  assertEquals(
    replaceSubsection(doc, "Reduced", "cpu2", "y"),
    "# B\n\n## A\n\na\n\n## Reduced\n\nintro\n\n### cpu1\n\nx\n\n### cpu2\n\ny\n\n## C\n\nc\n",
  );
  // A known machine's is rewritten in place.
  assertEquals(replaceSubsection(doc, "Reduced", "cpu1", "z"), doc.replace("\nx\n", "\nz\n"));
  // Neither present: both appended.
  assertEquals(
    replaceSubsection("# B\n\nb\n", "Reduced", "cpu", "y"),
    "# B\n\nb\n\n## Reduced\n\n### cpu\n\ny\n",
  );
});

Deno.test("describeCpu names the model, family, widest vector extension and VNNI", () => {
  const info =
    "processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx avx2 avx512f\n";
  assertEquals(describeCpu(info), "AMD EPYC (family 25, model 17; AVX-512)");
  assertEquals(
    describeCpu(info.replace("avx512f", "avx512f avx512_vnni")),
    "AMD EPYC (family 25, model 17; AVX-512, VNNI)",
  );
  assertEquals(describeCpu("model name\t: Some CPU\nflags\t: sse2 avx2\n"), "Some CPU (AVX2)");
  assertEquals(describeCpu(""), "unknown CPU");
});

Deno.test("checkEqualWork: step 1 within 1e-5, the first steps within 1e-4", () => {
  assert(checkEqualWork([2.302585, 2.2, 2.1], [2.302585, 2.20001, 2.1], 3).passed);
  assert(!checkEqualWork([2.3026, 2.2, 2.1], [2.3025, 2.2, 2.1], 3).passed, "step 1 differs by 4e-5");
  assert(!checkEqualWork([2.3, 2.2, 2.1], [2.3, 2.2, 2.101], 3).passed, "step 3 differs by 5e-4");
  assert(!checkEqualWork([2.3], [2.3], 3).passed, "too few steps to check");
});

const summary = (median: number) => ({ median, p10: median, p90: median, runs: 1 });
const matmul = (n: number, gflops: number): MatmulFigures => ({
  n,
  threads: 1,
  ms: summary(1),
  outputMs: summary(0.1),
  gflops,
  rawGflops: gflops * 0.9,
});
const peer = (stepMs: number[], mmMs: number): PeerResult => ({
  torch: "1.13.0a0",
  blas: {
    libraries: ["/lib/libopenblas.so"],
    openblasConfig: "OpenBLAS 0.3.21",
    openblasThreads: 1,
    torchBuild: "",
  },
  torchThreads: 1,
  losses: [2.3, 2.2],
  stepMs,
  matmul: [{ n: 1024, ms: [mmMs] }],
});
const round = (threads: number, gflops: number, ourMs: number[], peerMs: number[], mmMs: number): Round => ({
  threads,
  matmul: [matmul(1024, gflops)],
  ourMs,
  ourLosses: [2.3, 2.2],
  ourFaultsPerStep: 100,
  stateMs: [1],
  peer: peer(peerMs, mmMs),
  load: { ours: { cores: 1, seconds: 1 }, peer: { cores: 0, seconds: 3 } },
});

Deno.test("poolRounds pools step samples, keeps each size's best MatMul round, averages the load", () => {
  const rounds = [
    round(1, 80, [10, 12], [20], 30),
    round(2, 500, [1], [1], 1),
    round(1, 90, [14], [22, 24], 25),
  ];
  const t = poolRounds(1, rounds);
  assertEquals(t.ours.median, 12);
  assertEquals(t.peer.median, 22);
  assertEquals(t.matmul.map((m) => m.gflops), [90]);
  assertEquals(t.peerMatmul.map((m) => m.ms.median), [25]);
  assertEquals(t.load, { ours: 1, peer: 0 });
});

Deno.test("renderEngine states the command, the ratio, MFU and the check's verdict", () => {
  const figures: EngineFigures = {
    date: "2026-01-01",
    seconds: 60,
    machine: { cpu: "Test CPU", cores: 2, memoryGiB: 24, ort: "1.30.0" },
    torch: "1.13.0a0",
    blas: "OpenBLAS 0.3.21",
    spec: MLP,
    flops: { forward: 1e9, step: 2.5e9, matmul: 2.4e9 },
    stateFloats: 3.7e6,
    checkSteps: 2,
    rounds: 1,
    stepRepeats: { warmup: 1, runs: 1 },
    matmulRepeats: { warmup: 1, runs: 1 },
    profileRuns: 1,
    quietWait: { start: 1, turn: 1 },
    byThreads: [poolRounds(1, [round(1, 100, [50], [25], 20)])],
  };
  const text = renderEngine(figures);
  assert(text.includes("`npx --yes deno@2.9.6 task bench engine`"), "the command");
  // 2.5 GFLOP in 50 ms = 50 GFLOP/s, half the 100 GFLOP/s peak; ours/PyTorch = 50/25.
  const row = text.split("\n").find((l) => l.includes("50.0 (50.0–50.0)"))!;
  assertEquals(
    row.split("|").slice(1, 9).map((c) => c.trim()),
    ["1", "50.0 (50.0–50.0)", "25.0 (25.0–25.0)", "2.00", "2.00", "50.0", "100.0", "50 %"],
  );
  assert(text.includes("| passed |"), "the check passed");
  assert(text.includes("Other processes were busy"), "a load of 1 core is reported");
});

Deno.test("runsOfTrace attributes kernel events to the model_run that contains them", () => {
  const node = (ts: number, dur: number, op: string) => ({
    cat: "Node",
    name: `${op}_1_kernel_time`,
    ts,
    dur,
    args: { op_name: op },
  });
  const events = [
    { cat: "Session", name: "model_run", ts: 0, dur: 1000 }, // a warm-up run, dropped
    node(10, 500, "MatMul"),
    { cat: "Session", name: "model_run", ts: 2000, dur: 3000 },
    node(2100, 1500, "Gemm"),
    node(3700, 500, "FusedMatMul"),
    node(4300, 400, "Add"),
    { cat: "Session", name: "SequentialExecutor::Execute", ts: 2050, dur: 2900 },
  ];
  assertEquals(runsOfTrace(events, 1), [{ runMs: 3, kernelMs: 2.4, matmulMs: 2 }]);
});

Deno.test("bench ab: a side is a tree and runtime options; pairs compare B with A step by step", () => {
  assertEquals(parseSide("HEAD~1"), { label: "HEAD~1", revision: "HEAD~1", options: {} });
  assertEquals(parseSide(".,nchwc=false,threads=2,provider=cpu"), {
    label: ".,nchwc=false,threads=2,provider=cpu",
    revision: ".",
    options: { nchwc: false, threads: 2, provider: "cpu" },
  });
  assertEquals(pairRatios([100, 200, 400], [50, 200]), [0.5, 1]);
});

Deno.test("replaceSection: a new CPU kind's section goes after its siblings; an existing one is replaced in place", () => {
  const doc = "# Benchmarks\n\n## Perf on A\n\na\n\n### Sub\n\nx\n\n## Other\n\no\n";
  const added = replaceSection(doc, "Perf on B", "b", 2, "Perf");
  assertEquals(
    added,
    "# Benchmarks\n\n## Perf on A\n\na\n\n### Sub\n\nx\n\n## Perf on B\n\nb\n\n## Other\n\no\n",
  );
  assertEquals(
    replaceSection(added, "Perf on A", "a2", 2, "Perf"),
    "# Benchmarks\n\n## Perf on A\n\na2\n\n## Perf on B\n\nb\n\n## Other\n\no\n",
  );
  // Without siblings (or without `near`) it is appended, as before.
  assertEquals(replaceSection(doc, "New", "n", 2, "Nothing"), `${doc.trimEnd()}\n\n## New\n\nn\n`);
});
