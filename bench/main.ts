/**
 * `deno task bench <suite>`: performance measurements, as ratios against a peer run side by side, and the
 * experiment grids. Suites write their figures into BENCHMARKS.md (RESULTS.md for the grids) together
 * with the command that produced them.
 *
 * This dispatcher holds every suite's usage: `--help` / `-h` print it without loading the suite, an unknown
 * flag or a bad value is refused in one line before anything runs (bench/suite_args.ts), and a suite that
 * ends with a typed error — Ctrl-C during a grid's training stops it with a checkpoint — prints one line.
 */
import { BOUNDS } from "../cli/flag_schema.ts";
import { failureOutcome, parseSuiteArgs, type SuiteFlag, type SuiteUsage, TASK } from "./suite_args.ts";

interface Suite extends SuiteUsage {
  /** One line for `bench --help`. */
  readonly title: string;
  readonly run: (args: string[]) => Promise<unknown>;
}

const int = (bounds: (typeof BOUNDS)[keyof typeof BOUNDS]) => ({ _tag: "Int", bounds }) as const;

/** The flags every experiment grid shares (bench/grid_runs.ts reads them as `--name value`). */
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

const quick = (what: string): SuiteFlag => ({ form: "switch", description: what });

export const SUITES: Record<string, Suite> = {
  engine: {
    title: "MatMul peak and an MLP training step against eager PyTorch",
    summary:
      "The MatMul peak through ONNX Runtime and one MLP training step against eager PyTorch at equal " +
      'threads; rewrites BENCHMARKS.md\'s "Engine" section (installs the PyTorch peer with apt once).',
    run: async (args) => (await import("./engine.ts")).main(args),
  },
  perf: {
    title: "the segmenter's step and inference against PyTorch 2 / JAX (--model=mobilenet: MobileNetV2)",
    summary:
      "A Segmenter + RankSeg model's training step and inference against PyTorch 2 and JAX, MFU, the " +
      "head's cost as the vocabulary grows, data pipeline and overhead; rewrites BENCHMARKS.md's " +
      '"Performance (segmenter)" (with --model=mobilenet: "Performance (MobileNetV2 segmenter)").',
    flags: {
      model: {
        form: "equals",
        metavar: "mobilenet",
        value: { _tag: "Choice", choices: ["mobilenet"] },
        description: "measure the pretrained MobileNetV2 segmenter against PyTorch 2 instead",
      },
      quick: quick("one short round of everything; BENCHMARKS.md is left unchanged"),
      sides: {
        form: "equals",
        metavar: "eager,jax",
        value: { _tag: "Words" },
        description: "only these peer sides (bench/peers.ts's SIDES; default all)",
      },
      rounds: {
        form: "equals",
        metavar: "N",
        value: int(BOUNDS.repeats),
        description: "with --model=mobilenet: alternating rounds (default 3)",
      },
      threads: {
        form: "equals",
        metavar: "1,2",
        value: { _tag: "IntList", bounds: BOUNDS.threads },
        description: "with --model=mobilenet: the thread counts measured (default 1,2)",
      },
      tune: quick("with --model=mobilenet: try each side's thread settings first"),
      note: {
        form: "equals",
        metavar: "TEXT",
        value: { _tag: "Text" },
        description: "with --model=mobilenet: a sentence on the machine's load for the section",
      },
    },
    run: async (args) => (await import("./perf.ts")).main(args),
  },
  profile: {
    title: "ONNX Runtime's profile of a training step by op, kernel family and node",
    summary:
      "ONNX Runtime's profile of a training step by op type, kernel family and node (Markdown on stdout; " +
      "BENCHMARKS.md's \"Where kappa's step time goes\" quotes it).",
    flags: {
      models: {
        form: "equals",
        metavar: "vit,mobilenet",
        value: { _tag: "Words" },
        description: "the models profiled (default vit,mobilenet)",
      },
      threads: {
        form: "equals",
        metavar: "T",
        value: int(BOUNDS.threads),
        description: "intra-op threads (default 1)",
      },
      runs: {
        form: "equals",
        metavar: "N",
        value: int(BOUNDS.repeats),
        description: "profiled steps (default 5)",
      },
      warmup: {
        form: "equals",
        metavar: "N",
        value: int(BOUNDS.warmup),
        description: "unprofiled steps first (default 2)",
      },
    },
    run: async (args) => (await import("./profile_ops.ts")).main(args),
  },
  data: {
    title: "training-pipeline throughput and its overlap with the training step",
    summary: "Training-pipeline throughput on camvid and coco133 and its overlap with a blocking training " +
      'step; rewrites BENCHMARKS.md\'s "Data pipeline" section.',
    run: async () => {
      const [{ Effect }, { benchData }] = await Promise.all([import("effect"), import("./data.ts")]);
      return Effect.runPromise(benchData());
    },
  },
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
  gpu: {
    title: "webgpu against cpu; --json: the device check of a machine with a GPU",
    summary:
      "The quickstart model's training step and inference on webgpu against cpu, and the bytes a step " +
      'moves; rewrites BENCHMARKS.md\'s "WebGPU" section, or with --json runs the webgpu tests too and writes ' +
      "one JSON file (the device check of a machine with a GPU).",
    flags: {
      crop: {
        form: "space",
        metavar: "HxW",
        value: { _tag: "Size" },
        description: "crop size (default 64x64)",
      },
      batch: { form: "space", metavar: "B", value: int(BOUNDS.batch), description: "batch size (default 2)" },
      steps: {
        form: "space",
        metavar: "N",
        value: int(BOUNDS.repeats),
        description: "timed steps (default 5)",
      },
      json: {
        form: "space",
        metavar: "OUT",
        value: { _tag: "Path" },
        description: "write everything to this JSON file instead of BENCHMARKS.md",
      },
    },
    run: async (args) => (await import("./gpu.ts")).main(args),
  },
  larvseg: {
    title: "the LarvSeg grid (RESULTS.md)",
    summary:
      "Trains and evaluates the LarvSeg grid (experiments/larvseg, every seed, its budget probes first; " +
      'resumable) and writes RESULTS.md\'s "LarvSeg at CPU scale" section.',
    flags: gridFlags("grid's"),
    run: async (args) => (await import("./larvseg.ts")).main(args),
  },
  "larvseg-bank": {
    title: "LarvSeg's memory bank as the vocabulary grows",
    summary: "The memory of LarvSeg's bank and the training-step time with it as the vocabulary grows to " +
      "ImageNet-21k's 21,841 classes; rewrites BENCHMARKS.md's \"LarvSeg memory bank\" section.",
    flags: {
      "max-classes": {
        form: "space",
        metavar: "N",
        value: int(BOUNDS.classes),
        description: "the largest vocabulary measured (default 21841)",
      },
      steps: {
        form: "space",
        metavar: "S",
        value: int(BOUNDS.steps),
        description: "timed steps per size (default 5)",
      },
      threads: {
        form: "space",
        metavar: "T",
        value: int(BOUNDS.threads),
        description: "intra-op threads (default 1)",
      },
      size: {
        form: "space",
        metavar: "PX",
        value: int(BOUNDS.pixels),
        description: "crop side in pixels (default 64)",
      },
    },
    run: async (args) => (await import("./larvseg_bank.ts")).main(args),
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
  quantize: {
    title: "a run's int8 exports against its float32 export",
    summary: "The int8 exports of a run against its float32 export: mIoU through the export's documented " +
      'steps, changed pixels and one-image latency; rewrites BENCHMARKS.md\'s "Reduced precision (export)".',
    positionals: [{
      name: "run-dir",
      required: true,
      description: "the run folder whose exports are compared",
    }],
    flags: { quick: quick("evaluate 10 frames; BENCHMARKS.md is left unchanged") },
    run: async (args) => (await import("./quantize.ts")).main(args),
  },
};

/** The suites' list for `bench --help`. */
const overview = () =>
  [
    `usage: ${TASK} <suite> [flags]   (${TASK} <suite> --help for a suite's flags)`,
    "",
    ...Object.entries(SUITES).map(([name, s]) => `  ${name.padEnd(14)}${s.title}`),
    "",
  ].join("\n");

const dispatch = async (args: readonly string[]): Promise<number> => {
  const [suite, ...rest] = args;
  if (suite === undefined || suite === "--help" || suite === "-h") {
    if (suite === undefined) {
      console.error(`bench: which suite? see ${TASK} --help`);
      return 2;
    }
    console.log(overview());
    return 0;
  }
  const s = Object.hasOwn(SUITES, suite) ? SUITES[suite] : undefined;
  if (!s) {
    console.error(`bench: unknown suite ${suite}; see ${TASK} --help`);
    return 2;
  }
  const parsed = parseSuiteArgs(suite, s, rest);
  if (parsed._tag === "Help") {
    console.log(parsed.text);
    return 0;
  }
  if (parsed._tag === "Invalid") {
    console.error(parsed.line);
    return 2;
  }
  try {
    await s.run(rest);
    return 0;
  } catch (e) {
    const outcome = failureOutcome(suite, e);
    if (!outcome) throw e;
    for (const line of outcome.lines) console.error(line);
    return outcome.code;
  }
};

if (import.meta.main) {
  const code = await dispatch(Deno.args);
  // A suite that finished ends when its last pending work does, as before this dispatcher existed.
  if (code !== 0) Deno.exit(code);
}
