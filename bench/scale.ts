/**
 * `deno task bench scale [--steps S] [--rounds R] [--interconnect GBPS] [--quick]`: data-parallel
 * training of the quickstart on this machine — images/s of 1 rank × 1 thread, 2 ranks × 1 thread (per-rank batch 4, the
 * same work per rank), 1 rank × 2 threads, 2 ranks at the quickstart's own global batch of 4, and two
 * independent 1-rank runs at once (the machine's ceiling for two processes) — with the
 * all-reduce's time and bytes per step and its share of the step; the gradient all-reduce alone (one
 * bucket, 4 MiB buckets, one call per parameter) and the bandwidth between two local ranks; and a
 * projection of the scaling efficiency at 8, 64 and 512 ranks (a ring all-reduce over a stated
 * interconnect) for the quickstart and for RankSeg + Segmenter ViT-B at 512×512. Writes BENCHMARKS.md's
 * "Data-parallel training (MPI)" section (not with --quick).
 *
 * Every run is `train` as a user runs it (`--ranks 2` starts mpirun), S steps logged every 10, the first
 * 10 (sessions' first runs) left out; images/s counts the global batch. R rounds alternate the
 * configurations (the machine's load drifts); each row is the median of its rounds.
 */
import { join } from "node:path";
import quickstart from "../experiments/quickstart.ts";
import { describeModel, experiment, experimentJson } from "../mod.ts";
import * as m from "../mod.ts";
import { recordSection, table } from "../figures/markdown.ts";
import { flag } from "../figures/flags.ts";
import { thisCpu } from "../figures/cpu.ts";

const LOG_EVERY = 10;

interface Config {
  readonly name: string;
  readonly ranks: number;
  readonly threads: number;
  /** The global batch (train.batchSize); each rank takes batch / ranks. */
  readonly batch: number;
  /** Independent runs started at once (no MPI between them); images/s is their sum. Default 1. */
  readonly copies?: number;
}

const CONFIGS: readonly Config[] = [
  { name: "1 rank × 1 thread", ranks: 1, threads: 1, batch: 4 },
  { name: "2 ranks × 1 thread", ranks: 2, threads: 1, batch: 8 },
  { name: "1 rank × 2 threads", ranks: 1, threads: 2, batch: 4 },
  { name: "2 ranks × 1 thread, global batch 4", ranks: 2, threads: 1, batch: 4 },
  // The machine's own ceiling for two ranks: two runs of 1 rank × 1 thread at once, nothing shared
  // between them. Two ranks cannot beat it; the gap between them is what MPI and the lockstep cost.
  { name: "2 independent runs × 1 thread (no MPI)", ranks: 1, threads: 1, batch: 4, copies: 2 },
];

interface Measured {
  readonly config: Config;
  readonly imagesPerSecond: number;
  /** The lowest and highest images/s of the rounds (one value with one round). */
  readonly range: readonly [number, number];
  /** The 1-minute load average when each round's run started. */
  readonly loads: readonly number[];
  /** Seconds of a whole step (the global batch). */
  readonly stepSeconds: number;
  /** Per step: the all-reduce stages' seconds (waiting for the slower rank included) and bytes. */
  readonly allReduceSeconds?: number;
  readonly allReduceBytes?: number;
}

const deno = Deno.execPath();

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** One configuration's rounds as one row: median images/s and step time, mean all-reduce figures. */
const combine = (rounds: readonly Measured[]): Measured => {
  const ips = rounds.map((r) => r.imagesPerSecond);
  const mean = (k: "allReduceSeconds" | "allReduceBytes") =>
    rounds[0][k] === undefined ? undefined : rounds.reduce((a, r) => a + r[k]!, 0) / rounds.length;
  return {
    config: rounds[0].config,
    imagesPerSecond: median(ips),
    range: [Math.min(...ips), Math.max(...ips)],
    loads: rounds.flatMap((r) => r.loads),
    stepSeconds: median(rounds.map((r) => r.stepSeconds)),
    allReduceSeconds: mean("allReduceSeconds"),
    allReduceBytes: mean("allReduceBytes"),
  };
};

/** Trains the quickstart as `c` says (its copies at once) and reads the throughput from metrics.jsonl. */
const measure = async (c: Config, steps: number, root: string): Promise<Measured> => {
  const load = Deno.loadavg()[0];
  const copies = await Promise.all(
    Array.from({ length: c.copies ?? 1 }, (_, i) => measureOne(c, steps, root, c.copies ? `-${i}` : "")),
  );
  const ips = copies.reduce((a, r) => a + r.imagesPerSecond, 0);
  return {
    ...copies[0],
    config: c,
    imagesPerSecond: ips,
    range: [ips, ips],
    loads: [load],
    stepSeconds: copies.reduce((a, r) => a + r.stepSeconds, 0) / copies.length,
  };
};

/** One `train` run's figures; `measure` adds the configuration, the range and the load. */
type RunFigures = Pick<Measured, "imagesPerSecond" | "stepSeconds" | "allReduceSeconds" | "allReduceBytes">;

const measureOne = async (c: Config, steps: number, root: string, suffix: string): Promise<RunFigures> => {
  await Deno.mkdir(root, { recursive: true });
  const spec = join(root, `batch${c.batch}.json`);
  const e = experiment({
    ...quickstart,
    train: { ...quickstart.train, batchSize: c.batch, logEvery: LOG_EVERY },
  });
  await Deno.writeTextFile(spec, experimentJson(e));
  const out = join(root, c.name.replace(/[^a-z0-9]+/gi, "-") + suffix);
  const args = [
    "run",
    "-A",
    "cli/main.ts",
    "train",
    spec,
    "--out",
    out,
    "--steps",
    String(steps),
    "--threads",
    String(c.threads),
    "--workers",
    "1",
    "--eval-limit",
    "1",
    ...(c.ranks > 1 ? ["--ranks", String(c.ranks)] : []),
  ];
  const o = await new Deno.Command(deno, { args, stdout: "piped", stderr: "piped" }).output();
  if (!o.success) {
    throw new Error(`${c.name}: train failed: ${new TextDecoder().decode(o.stderr).slice(-1500)}`);
  }
  const lines = Deno.readTextFileSync(join(out, "metrics.jsonl")).trim().split("\n").map((l) => JSON.parse(l))
    .filter((l) => l.kind === "train").slice(1);
  const images = lines.length * LOG_EVERY * c.batch;
  const seconds = lines.reduce((a, l) => a + LOG_EVERY * c.batch / l.imagesPerSecond, 0);
  const mean = (k: string) =>
    lines[0][k] === undefined ? undefined : lines.reduce((a, l) => a + l[k], 0) / lines.length;
  return {
    imagesPerSecond: images / seconds,
    stepSeconds: seconds / (lines.length * LOG_EVERY),
    allReduceSeconds: mean("allReduceSeconds"),
    allReduceBytes: mean("allReduceBytes"),
  };
};

interface AllReduce {
  readonly parameters: number;
  readonly bytes: number;
  readonly oneBucketMs: number;
  readonly buckets4MiBMs: number;
  readonly perParameterMs: number;
  readonly bare64MiBMs: number;
}

/** The gradient all-reduce alone, between 2 local ranks (bench/scale_child.ts). */
const allReduceAlone = async (): Promise<AllReduce> => {
  const o = await new Deno.Command("mpirun", {
    args: [
      ...(Deno.uid() === 0 ? ["--allow-run-as-root"] : []),
      "--bind-to",
      "none",
      "-np",
      "2",
      deno,
      "run",
      "-A",
      "bench/scale_child.ts",
    ],
    // As `train --ranks` runs its ranks (cli/ranks.ts): waiting ranks yield the core.
    env: { OMPI_MCA_mpi_yield_when_idle: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!o.success) {
    throw new Error(`all-reduce child failed: ${new TextDecoder().decode(o.stderr).slice(-1500)}`);
  }
  return JSON.parse(new TextDecoder().decode(o.stdout).trim().split("\n").at(-1)!);
};

/** Ring all-reduce of `bytes` over `n` ranks: 2(n − 1) steps of bytes / n, each paying the latency. */
export const ringSeconds = (bytes: number, n: number, bandwidth: number, latency: number): number =>
  n <= 1 ? 0 : (2 * (n - 1) / n) * bytes / bandwidth + 2 * (n - 1) * latency;

/** RankSeg + Segmenter ViT-B/16 at 512×512 on ADE20K's 150 classes (the papers' setting). */
export const vitBase = () =>
  m.segmenter({
    classes: 150,
    backbone: m.vit({ dim: 768, depth: 12, heads: 12, patchSize: 16 }),
    xi: m.transformerEncoder({ pool: 8, heads: 12 }),
    psi: m.maskTransformer({ layers: 2, heads: 12 }),
    select: m.topK(25),
    temperature: m.rankAdaptive(),
    multiLabelLoss: m.asymmetricLoss({ weight: 1 }),
  });

const LATENCY = 5e-6, FLOPS = 100e12, VIT_BATCHES = [1, 8], RANKS = [8, 64, 512];

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const ms = (s: number) => `${(1000 * s).toFixed(s < 0.01 ? 2 : 1)} ms`;

export const main = async (_args: string[]) => {
  const quick = Deno.args.includes("--quick");
  const steps = Number(flag("steps") ?? (quick ? 20 : 40));
  const rounds = Number(flag("rounds") ?? (quick ? 1 : 2));
  const gbps = Number(flag("interconnect") ?? 25);
  const root = await Deno.makeTempDir({ prefix: "kappa-scale-" });
  const loadBefore = Deno.loadavg();
  const started = performance.now();
  try {
    const alone = await allReduceAlone();
    console.error(`all-reduce alone: ${JSON.stringify(alone)}`);
    // Rounds alternate the configurations, so that a change of the machine's load falls on all of them.
    const runs: Measured[][] = CONFIGS.map(() => []);
    for (let round = 0; round < rounds; round++) {
      for (const [i, c] of CONFIGS.entries()) {
        const r = await measure(c, steps, join(root, `round${round}`));
        runs[i].push(r);
        console.error(
          `round ${round + 1}, ${c.name}: ${r.imagesPerSecond.toFixed(2)} images/s, ${
            r.stepSeconds.toFixed(3)
          } s/step` +
            (r.allReduceSeconds === undefined ? "" : `, all-reduce ${ms(r.allReduceSeconds)}/step`) +
            ` (load ${r.loads[0].toFixed(1)})`,
        );
      }
    }
    const measured = runs.map(combine);
    const loadAfter = Deno.loadavg();
    const base = measured[0];
    const bandwidth = (2 * (2 - 1) / 2) * 64 * 2 ** 20 / (alone.bare64MiBMs / 1000);
    const vit = describeModel(vitBase(), [512, 512]).components.find((c) => c.component === "total")!;
    const perRank = [
      { name: "quickstart, batch 4 per rank", bytes: alone.bytes, compute: base.stepSeconds },
      ...VIT_BATCHES.map((b) => ({
        name: `ViT-B RankSeg, batch ${b} per rank`,
        bytes: 4 * vit.params,
        compute: 3 * vit.gflops * 1e9 * b / FLOPS,
      })),
    ];
    const projection = perRank.flatMap((p) =>
      RANKS.map((n) => {
        const t = ringSeconds(p.bytes, n, gbps * 1e9, LATENCY);
        return {
          model: p.name,
          n,
          compute: p.compute,
          allReduce: t,
          serial: p.compute / (p.compute + t),
          overlap: p.compute / Math.max(p.compute, t),
        };
      })
    );
    const two = measured[1], twoThreads = measured[2], strong = measured[3], ceiling = measured[4];
    // The all-reduce stages' wall time is the transfer (the all-reduce alone, measured above) plus the
    // time the faster rank waits for the slower one.
    const waiting = (r: Measured) => Math.max(0, (r.allReduceSeconds ?? 0) - alone.oneBucketMs / 1000);
    const speedup = two.imagesPerSecond / base.imagesPerSecond;
    const share = (r: Measured) => (r.allReduceSeconds ?? 0) / r.stepSeconds;
    const body = [
      `Produced by \`npx --yes deno@2.9.6 task bench scale --steps ${steps} --rounds ${rounds} --interconnect ${gbps}\` on ${
        new Date().toISOString().slice(0, 10)
      }, ${thisCpu()}, ${navigator.hardwareConcurrency} cores shared with other engineers' jobs: load average ` +
      `${loadBefore.map((x) => x.toFixed(1)).join(" / ")} (1 / 5 / 15 min) at the start, ${
        loadAfter.map((x) => x.toFixed(1)).join(" / ")
      } at the end; ${((performance.now() - started) / 60000).toFixed(1)} min. Open MPI 4.1.4 through FFI ` +
      "(runtime/mpi.ts), ranks started by `train --ranks 2` (mpirun --bind-to none). Each row is " +
      `${rounds} \`train\` run${
        rounds > 1 ? "s" : ""
      } of the quickstart (rounds alternating the rows) for ${steps} ` +
      `steps each (logged every ${LOG_EVERY}; the first ${LOG_EVERY} left out), with 1 data-loading Worker ` +
      `per process; images/s counts the global batch${
        rounds > 1 ? ": the median of the rounds, their range in parentheses" : ""
      }.`,
      "",
      table(
        [
          { header: "configuration", cell: (r: Measured) => r.config.name },
          { header: "global batch", cell: (r) => String(r.config.batch) },
          {
            header: "images/s",
            cell: (r) =>
              r.loads.length > 1
                ? `${r.imagesPerSecond.toFixed(2)} (${r.range.map((x) => x.toFixed(2)).join("–")})`
                : r.imagesPerSecond.toFixed(2),
          },
          { header: "load at start", cell: (r) => r.loads.map((x) => x.toFixed(1)).join(", ") },
          {
            header: "× 1 rank × 1 thread",
            cell: (r) => `${(r.imagesPerSecond / base.imagesPerSecond).toFixed(2)}×`,
          },
          { header: "s/step", cell: (r) => r.stepSeconds.toFixed(3) },
          {
            header: "all-reduce per step",
            cell: (r) => (r.allReduceSeconds === undefined ? "–" : ms(r.allReduceSeconds)),
          },
          {
            header: "bytes per step",
            cell: (
              r,
            ) => (r.allReduceBytes === undefined ? "–" : `${(r.allReduceBytes / 2 ** 20).toFixed(1)} MiB`),
          },
          {
            header: "share of the step",
            cell: (r) => (r.allReduceSeconds === undefined ? "–" : pct(share(r))),
          },
        ],
        measured,
        "plain",
      ),
      "",
      `2 ranks × 1 thread trained ${speedup.toFixed(2)}× the images/s of 1 rank × 1 thread (goal ≥ 1.7×: ${
        speedup >= 1.7 ? "met" : "not met"
      } on this run) and 1 rank × 2 threads ${
        (twoThreads.imagesPerSecond / base.imagesPerSecond).toFixed(2)
      }×; ` +
      `the all-reduce took ${pct(share(two))} of the 2-rank step (goal ≤ 10 %: ${
        share(two) <= 0.1 ? "met" : "not met"
      }) ` +
      `and ${
        pct(share(strong))
      } at the quickstart's own global batch of 4 (2 per rank). Two independent runs at once, nothing ` +
      `shared, reached ${(ceiling.imagesPerSecond / base.imagesPerSecond).toFixed(2)}× (this machine's ` +
      `ceiling for two processes), so 2 ranks reached ${
        (two.imagesPerSecond / ceiling.imagesPerSecond * 100).toFixed(0)
      } % of what two processes get here. Of the 2-rank step's ${ms(two.allReduceSeconds ?? 0)} in the ` +
      `all-reduce stages, the transfer itself is about ${alone.oneBucketMs.toFixed(1)} ms (the all-reduce ` +
      `alone, below: ${pct(alone.oneBucketMs / 1000 / two.stepSeconds)} of the step) and about ${
        ms(waiting(two))
      } waiting for the slower rank. The all-reduce time ` +
      "is the host stages' wall time per step — the gradients packed into one buffer, MPI_Allreduce in place, " +
      "averaged and unpacked, plus the counts' all-reduce — and includes waiting for the slower rank. " +
      "The machine is shared: with a load average above its core count the scheduler gives each runnable " +
      "process its share of the cores, so two ranks can get more CPU time than one process (with one " +
      "thread or two) and the ratios are this machine's under this load, not kappa's alone.",
      "",
      `The gradient all-reduce alone between 2 local ranks (${alone.parameters} parameter tensors, ${
        (alone.bytes / 2 ** 20).toFixed(1)
      } MiB of float32, median of 15): one bucket ${alone.oneBucketMs.toFixed(1)} ms, 4 MiB buckets ${
        alone.buckets4MiBMs.toFixed(1)
      } ms, one call per parameter ${alone.perParameterMs.toFixed(1)} ms. ${
        alone.oneBucketMs <= Math.min(alone.buckets4MiBMs, alone.perParameterMs)
          ? "One bucket is the fastest, so kappa packs all gradients into one all-reduce."
          : "One bucket is not the fastest here; kappa still packs all gradients into one all-reduce (the default)."
      } Overlapping the all-reduce with the backward pass would need the gradient graph cut into ` +
      "pieces (ONNX Runtime returns a run's outputs when the whole run ends); at " +
      `${pct(share(two))} of the step it would not pay here. A bare all-reduce of 64 MiB took ${
        alone.bare64MiBMs.toFixed(1)
      } ms: ${(bandwidth / 1e9).toFixed(2)} GB/s bus bandwidth between two ranks through shared memory.`,
      "",
      "### Projection past one machine",
      "",
      "Assumptions, all of them: synchronous data parallelism as kappa runs it (the all-reduce after the whole " +
      "backward pass, not overlapped); a ring all-reduce, 2(N − 1) steps each moving 1/N of the float32 " +
      `gradients, at ${gbps} GB/s per rank (a stated interconnect figure, e.g. 200 Gb/s InfiniBand) with ${
        LATENCY * 1e6
      } µs per step; ` +
      "the per-rank compute time constant in N (weak scaling: per-rank batch fixed); no stragglers, no data " +
      "loading stalls. The quickstart (MobileNetV2 + RankSeg at 176×240, " +
      `${
        (alone.bytes / 4 / 1e6).toFixed(2)
      } M parameters) computes for its measured 1-rank × 1-thread step on ` +
      "this CPU (inflated by the machine's load). RankSeg + Segmenter ViT-B/16 at 512×512 with ADE20K's 150 " +
      `classes (mask-transformer ψ of 2 layers, ξ, top-25; ${(vit.params / 1e6).toFixed(1)} M parameters, ${
        vit.gflops.toFixed(0)
      } GFLOPs forward per image, describeModel) computes for an assumed 3 × its forward FLOPs (forward + ` +
      `backward) per image at ${
        FLOPS / 1e12
      } TFLOP/s sustained (e.g. an A100's 312 TFLOP/s bf16 peak at 32 % ` +
      "utilization), at per-rank batch 1 (the papers' global batch of 8 over 8 GPUs) and 8. Gradients are " +
      "all-reduced in float32, as kappa does (bf16 would halve the bytes). " +
      "Efficiency = compute / (compute + all-reduce); " +
      "with the all-reduce overlapped with the backward pass (buckets sent as their gradients are ready, " +
      "which kappa does not do) the bound would be compute / max(compute, all-reduce).",
      "",
      table(
        [
          { header: "model", cell: (r: (typeof projection)[number]) => r.model },
          { header: "ranks", cell: (r) => String(r.n) },
          { header: "compute per step", cell: (r) => ms(r.compute) },
          { header: "all-reduce per step", cell: (r) => ms(r.allReduce) },
          { header: "efficiency (as kappa runs)", cell: (r) => pct(r.serial) },
          { header: "efficiency (overlapped)", cell: (r) => pct(r.overlap) },
        ],
        projection,
        "plain",
      ),
    ];
    console.log(body.join("\n"));
    if (!quick) await recordSection("BENCHMARKS.md", "Data-parallel training (MPI)", body.join("\n"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
};
