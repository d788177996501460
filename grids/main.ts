/**
 * `deno task grid <grid> [flags]`: the experiment grids. Each trains its rows' runs for every seed
 * (resumable: a run with its eval record is skipped, an interrupted one resumes), evaluates them and writes
 * its part of RESULTS.md and its plots under results/. `--help` (or `-h`) prints the usage and runs
 * nothing; a bad flag is one line; Ctrl-C during a run's training ends with one line (status 130) after
 * the run wrote its checkpoint (figures/command_line.ts). The timings are `deno task bench`.
 */
import {
  BOUNDS,
  dispatch,
  int,
  positionalArgs,
  type Suite,
  type SuiteFlag,
  type SuiteUsage,
} from "../figures/command_line.ts";
import { SLURM_FLAGS, slurmFlagsProblem, slurmRequested } from "./slurm/slurm_flags.ts";
import { requireSbatch, SlurmError } from "./slurm/slurm_commands.ts";

/** The flags every experiment grid shares (grids/grid_runs.ts reads them as `--name value`). */
const gridFlags = (what: string): Record<string, SuiteFlag> => ({
  seeds: { form: "space", metavar: "N", value: int(BOUNDS.seeds), description: "seeds per row (default 3)" },
  steps: {
    form: "space",
    metavar: "N",
    value: int(BOUNDS.steps),
    description: "train each run this many steps instead of its spec's",
  },
  "frozen-backbone": {
    form: "space",
    metavar: "D",
    value: int(BOUNDS.draws),
    description: "train every run's head on its frozen backbone (train.frozenBackbone) with D cached " +
      "augmentation draws per image (0: no cache); runs get folders of their own (…-frozen<D>-s<seed>)",
  },
  only: {
    form: "space",
    metavar: "REGEX",
    value: { _tag: "Regex" },
    description: `only the ${what} spec files whose name matches`,
  },
  "report-only": {
    form: "switch",
    description: "train nothing: write the tables from the runs finished so far",
  },
  threads: {
    form: "space",
    metavar: "T",
    value: int(BOUNDS.threads),
    description: "intra-op threads of each run (a resumed run must keep its count)",
  },
  workers: {
    form: "space",
    metavar: "W",
    value: int(BOUNDS.workers),
    description: "data-loading Workers of each run",
  },
  ...SLURM_FLAGS,
});

/**
 * A grid's run that first checks its Slurm flags: a Slurm flag without `--slurm`, or `--slurm` without
 * sbatch on PATH, is one line before any spec loads.
 */
const submittable = (run: (args: string[]) => Promise<unknown>) => async (args: string[]) => {
  const problem = slurmFlagsProblem(args);
  if (problem) throw new SlurmError({ reason: problem });
  if (slurmRequested(args)) requireSbatch();
  return await run(args);
};

const runsUsage: SuiteUsage = {
  summary: "The generic grid: every experiment file × seeds 0…N−1, trained into runs/grid-<name>/ " +
    "(resumable), then a RESULTS-style table of the headline metric (mIoU, or PQ) mean ± std per experiment " +
    "into --report FILE (its `# Grid <name>` part, with a chart beside it) or stdout.",
  positionals: [{
    name: "experiment",
    required: true,
    variadic: true,
    description: "experiment files (.ts or .json), folders (the files directly in them) or quoted globs",
  }],
  flags: {
    name: {
      form: "space",
      metavar: "NAME",
      value: { _tag: "Text" },
      description: "the grid's name: runs/grid-<NAME> (default: the first argument's name)",
    },
    report: {
      form: "space",
      metavar: "FILE",
      value: { _tag: "Path" },
      description: "write the table as the `# Grid <name>` part of FILE (default: print it)",
    },
    curve: {
      form: "space",
      metavar: "STEPS:EVERY",
      value: { _tag: "Text" },
      description:
        "first train each experiment's learning curve (seed 0, STEPS steps, validated every EVERY); " +
        "its plateau (the first evaluation within 1 mIoU of its best) is the steps of its runs",
    },
    "curve-of": {
      form: "space",
      metavar: "FILE",
      value: { _tag: "Path" },
      description: "with --curve: one curve, of FILE, sets every experiment's steps",
    },
    "plateau-tolerance": {
      form: "space",
      metavar: "X",
      value: { _tag: "Text" },
      description: "with --curve: the plateau is the first evaluation within X mIoU of the best (default 1)",
    },
    ...gridFlags("experiment"),
  },
};

const rankerQualityUsage: SuiteUsage = {
  summary:
    "How good must ξ rank before RankSeg's selection pays: on each trained +MT+LS run, ξ's scores are " +
    "mixed with the ground truth (α = 0 is ξ, α = 1 the oracle's ranking); +LS at κ is evaluated at each α " +
    "(mIoU, the ranking's mAP and recall@κ) beside κ = K and the oracle on the same weights, and the crossover " +
    "is written as RESULTS.md's ranker-quality part with a chart per run. Trains nothing; evaluations are " +
    "kept in <run>/ranker-quality/.",
  positionals: [{
    name: "run-dir",
    required: true,
    variadic: true,
    description: "trained RankSeg runs (top-κ, ξ, shared τ: the +MT+LS row), e.g. one per seed",
  }],
  flags: {
    alphas: {
      form: "space",
      metavar: "A,B,…",
      value: { _tag: "Text" },
      description: "the mixing weights in [0, 1] (default 0,0.001,0.002,0.005,0.01,0.02,0.05,0.2,1)",
    },
    limit: {
      form: "space",
      metavar: "N",
      value: int(BOUNDS.images),
      description: "evaluate only the first N validation images",
    },
    ranker: {
      form: "space",
      metavar: "DIR",
      value: { _tag: "Path" },
      description:
        "also rank +LS by the ξ of this separately trained multi-label run, in place of the model's own",
    },
    "report-only": {
      form: "switch",
      description: "evaluate nothing: write the part from the kept evaluations",
    },
    threads: {
      form: "space",
      metavar: "T",
      value: int(BOUNDS.threads),
      description: "intra-op threads of the evaluations",
    },
    workers: { form: "space", metavar: "W", value: int(BOUNDS.workers), description: "data-loading Workers" },
  },
};

const novelClassesUsage: SuiteUsage = {
  summary:
    "Where a trained LarvSeg model's novel classes lose: on the validation split, the share of each novel " +
    "class's pixels it wins, the rank and margin of its logit, the classes that win its pixels instead, and " +
    "the image-level AP of the pixel-averaged logit (what the image-level loss trains), beside the base " +
    "classes'; written as RESULTS.md's novel-classes part. Trains nothing; each diagnosis is kept in " +
    "<run>/novel-classes.json.",
  positionals: [{
    name: "run-dir",
    required: true,
    variadic: true,
    description: "trained runs of a model with novel classes (eval.novel), e.g. every row and seed of a grid",
  }],
  flags: {
    limit: rankerQualityUsage.flags!.limit,
    "report-only": {
      form: "switch",
      description: "compute nothing: write the part from the kept diagnoses",
    },
    threads: rankerQualityUsage.flags!.threads,
    workers: rankerQualityUsage.flags!.workers,
  },
};

export const GRIDS: Record<string, Suite> = {
  ablation: {
    title: "the RankSeg ablation grids (RESULTS.md)",
    summary:
      "Trains and evaluates a RankSeg ablation grid (one spec per row, every seed; resumable) and writes " +
      "its part of RESULTS.md with a plot per dataset.",
    flags: {
      grid: {
        form: "space",
        metavar: "scratch|pretrained",
        value: { _tag: "Choice", choices: ["scratch", "pretrained"] },
        description: "experiments/rankseg (from scratch, the default) or experiments/rankseg-pretrained",
      },
      ...gridFlags("grid's"),
    },
    run: submittable(async (args) => (await import("./ablation.ts")).main(args)),
  },
  larvseg: {
    title: "the LarvSeg grid (RESULTS.md)",
    summary:
      "Trains and evaluates the LarvSeg grid (experiments/larvseg, every seed, its budget probes first; " +
      'resumable) and writes RESULTS.md\'s "LarvSeg at CPU scale" section.',
    flags: gridFlags("grid's"),
    run: submittable(async (args) => (await import("./larvseg.ts")).main(args)),
  },
  "xi-sources": {
    title: "ξ from image-level sources on ccp: mAP and recall@κ per source mix (RESULTS.md)",
    summary:
      "Trains RankSeg's multi-label head ξ on ccp with each mix of image-level sources (experiments/xi-sources, " +
      'every seed; resumable) and writes RESULTS.md\'s "ξ from image-level sources (ccp)" section.',
    flags: gridFlags("grid's"),
    run: submittable(async (args) => (await import("./xi_sources.ts")).main(args)),
  },
  panoptic: {
    title: "the ReMaX grid on coco133 (RESULTS.md); step; diagnose <run-dir>",
    summary: "Without a mode: trains and evaluates the ReMaX grid on coco133 (resumable) and writes its " +
      "RESULTS.md section. step: one training step split into its stages (BENCHMARKS.md). diagnose <run-dir>: " +
      "what a trained run's class head does on training batches.",
    positionals: [
      {
        name: "mode",
        required: false,
        choices: ["step", "diagnose"],
        description: "what to measure (default: the grid)",
      },
      { name: "run-dir", required: false, description: "diagnose: the run folder" },
    ],
    flags: {
      ...gridFlags("grid's"),
      batches: {
        form: "space",
        metavar: "N",
        value: int(BOUNDS.repeats),
        description: "diagnose: training batches (default 8)",
      },
      checkpoint: {
        form: "space",
        metavar: "FILE",
        value: { _tag: "Path" },
        description: "diagnose: the checkpoint (default: as eval chooses)",
      },
    },
    check: (p) =>
      p[0] !== undefined && slurmRequested()
        ? `--slurm submits the grid; ${p[0]} runs here: leave out --slurm`
        : p[0] === "diagnose" && p.length < 2
        ? "diagnose needs a run folder: panoptic diagnose <run-dir>"
        : p[0] !== "diagnose" && p.length > 1
        ? `unexpected argument ${JSON.stringify(p[1])}`
        : undefined,
    run: submittable(async (args) => (await import("./panoptic.ts")).main(args)),
  },
  runs: {
    title: "the generic grid: any experiment files × seeds, a table of their headline metric",
    ...runsUsage,
    run: submittable(async (args) =>
      (await import("./experiments_grid.ts")).main(positionalArgs(runsUsage, args), args)
    ),
  },
  "ranker-quality": {
    title: "the ranker-quality sweep: when RankSeg's selection pays, against ξ's mAP (RESULTS.md)",
    ...rankerQualityUsage,
    run: async (args) =>
      (await import("./ranker_quality.ts")).main(positionalArgs(rankerQualityUsage, args), args),
  },
  "novel-classes": {
    title:
      "where LarvSeg's novel classes lose: pixels won, logit rank and margin, image-level AP (RESULTS.md)",
    ...novelClassesUsage,
    run: async (args) =>
      (await import("./novel_classes.ts")).main(positionalArgs(novelClassesUsage, args), args),
  },
  status: {
    title: "the runs of a submitted grid: finished, running (step), failed (why), pending",
    summary: "Lists the runs of a grid submitted to Slurm (its newest submission): finished (headline " +
      "metric), running (step, from metrics.jsonl), failed (the last line of its log), pending (queued, or " +
      "not submitted), with the Slurm job/task of each.",
    positionals: [{
      name: "grid",
      required: true,
      description: "a manifest.json, a grid's runs folder, or a grid's name (ablation, " +
        "ablation-pretrained, larvseg, panoptic, or a generic grid's <name>)",
    }],
    run: async (args) => (await import("./slurm/status.ts")).printStatus(args[0]),
  },
  task: {
    title: "one run of a submitted grid (what each Slurm array task runs)",
    summary: "Trains run tasks[i] of a submitted grid's manifest with resume semantics (nothing to do when " +
      "it has finished, resumed from its checkpoint when it has one); its log is " +
      "<run folder>/slurm-<job>_<task>.log. The array script of a Slurm submission runs it; a user need not.",
    positionals: [
      { name: "manifest", required: true, description: "the submission's manifest.json" },
      { name: "task", required: true, description: "the array task index" },
    ],
    check: (p) =>
      p.length === 2 && !/^\d+$/.test(p[1]) ? `<task> ${p[1]}: expected an index (0, 1, …)` : undefined,
    run: async (args) => {
      const code = await (await import("./slurm/task.ts")).runTask(args[0], Number(args[1]));
      if (code !== 0) Deno.exit(code);
    },
  },
};

if (import.meta.main) {
  const code = await dispatch("grid", GRIDS, Deno.args);
  if (code !== 0) Deno.exit(code);
}
