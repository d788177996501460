/**
 * `deno task grid <grid> [flags]`: the experiment grids. Each trains its rows' runs for every seed
 * (resumable: a run with its eval record is skipped, an interrupted one resumes), evaluates them and writes
 * its part of RESULTS.md and its plots under results/. `--help` (or `-h`) prints the usage and runs
 * nothing; a bad flag is one line; Ctrl-C during a run's training ends with one line (status 130) after
 * the run wrote its checkpoint (figures/command_line.ts). The timings are `deno task bench`.
 */
import { BOUNDS, dispatch, int, type Suite, type SuiteFlag } from "../figures/command_line.ts";

/** The flags every experiment grid shares (grids/grid_runs.ts reads them as `--name value`). */
const gridFlags = (what: string): Record<string, SuiteFlag> => ({
  seeds: { form: "space", metavar: "N", value: int(BOUNDS.seeds), description: "seeds per row (default 3)" },
  steps: {
    form: "space",
    metavar: "N",
    value: int(BOUNDS.steps),
    description: "train each run this many steps instead of its spec's",
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
});

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
    run: async (args) => (await import("./ablation.ts")).main(args),
  },
  larvseg: {
    title: "the LarvSeg grid (RESULTS.md)",
    summary:
      "Trains and evaluates the LarvSeg grid (experiments/larvseg, every seed, its budget probes first; " +
      'resumable) and writes RESULTS.md\'s "LarvSeg at CPU scale" section.',
    flags: gridFlags("grid's"),
    run: async (args) => (await import("./larvseg.ts")).main(args),
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
      p[0] === "diagnose" && p.length < 2
        ? "diagnose needs a run folder: panoptic diagnose <run-dir>"
        : p[0] !== "diagnose" && p.length > 1
        ? `unexpected argument ${JSON.stringify(p[1])}`
        : undefined,
    run: async (args) => (await import("./panoptic.ts")).main(args),
  },
};

if (import.meta.main) {
  const code = await dispatch("grid", GRIDS, Deno.args);
  if (code !== 0) Deno.exit(code);
}
