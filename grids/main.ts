/**
 * `deno task grid <grid> [flags]`: the experiment grids. Each trains its rows' runs for every seed
 * (resumable: a run with its eval record is skipped, an interrupted one resumes), evaluates them and writes
 * its part of RESULTS.md and its plots under results/. `--help` (or `-h`) anywhere prints the usage and
 * runs nothing. The timings are `deno task bench` (bench/main.ts).
 */
interface GridCommand {
  /** The forms of the command after the grid's name, one a line. */
  readonly usage: readonly string[];
  /** What it runs and writes, in lines short enough for a terminal. */
  readonly what: readonly string[];
  readonly main: () => Promise<{ main: (args: string[]) => Promise<unknown> }>;
}

/** Flags every grid takes: which spec files, how many seeds and steps, threads and Workers per run. */
const COMMON = "[--seeds 3] [--steps N] [--only REGEX] [--threads T] [--workers W] [--report-only]";

const GRIDS: Record<string, GridCommand> = {
  ablation: {
    usage: [`[--grid scratch|pretrained] ${COMMON}`],
    what: [
      "the RankSeg ablation: experiments/rankseg/ from scratch, experiments/rankseg-pretrained/ on the",
      "ImageNet MobileNetV2; mIoU, mAP, params and GFLOPs per row, the paper's numbers beside ours",
    ],
    main: () => import("./ablation.ts"),
  },
  larvseg: {
    usage: [COMMON],
    what: ["the LarvSeg grid (experiments/larvseg/) and its budget probes: all / base / novel mIoU per row"],
    main: () => import("./larvseg.ts"),
  },
  panoptic: {
    usage: [COMMON, "step", "diagnose RUN [--batches N] [--checkpoint FILE]"],
    what: [
      "the ReMaX grid on coco133 (experiments/panoptic/): PQ, training step and inference time per row;",
      "step: one training step's stages, timed (BENCHMARKS.md); diagnose: what a trained run's class head",
      "does on training batches",
    ],
    main: () => import("./panoptic.ts"),
  },
};

const usage = (names: readonly string[]): string =>
  [
    `usage: deno task grid <${Object.keys(GRIDS).join("|")}> [flags]   (--help, -h: this text)`,
    ...names.flatMap((name) => [
      "",
      ...GRIDS[name].usage.map((form) => `  ${name} ${form}`),
      ...GRIDS[name].what.map((line) => `      ${line}`),
    ]),
    "",
    "--report-only trains nothing: it writes the tables from the runs finished so far and says which rows",
    "lack seeds; --threads / --workers set each run's, so that two grid processes can share a machine.",
  ].join("\n");

const [name, ...args] = Deno.args;
const grid = name === undefined ? undefined : GRIDS[name];
if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
  console.log(usage(grid ? [name] : Object.keys(GRIDS)));
} else if (!grid) {
  console.error(`${name === undefined ? "" : `grid ${name}: no such grid\n`}${usage(Object.keys(GRIDS))}`);
  Deno.exit(2);
} else await (await grid.main()).main(args);
