/**
 * `deno task bench <suite>`: performance measurements, as ratios against a peer run side by side. Suites
 * write their figures into BENCHMARKS.md together with the command that produced them. The experiment
 * grids that write RESULTS.md are `deno task grid` (grids/main.ts).
 *
 * This table holds every suite's usage: `--help` / `-h` print it without loading the suite, an unknown
 * flag or a bad value is refused in one line before anything runs, and a suite that ends with a typed
 * error prints one line (figures/command_line.ts).
 */
import { BOUNDS, dispatch, int, type Suite } from "../figures/command_line.ts";

const quick = (what: string) => ({ form: "switch", description: what }) as const;

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
      "head's cost as the vocabulary grows, data pipeline and overhead; rewrites this CPU kind's section of " +
      'BENCHMARKS.md, "Performance (segmenter) on <CPU>" (with --model=mobilenet: "Performance (MobileNetV2 ' +
      "segmenter) on <CPU>\"); the other kinds' sections stay.",
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
  ab: {
    title: "one change before and after: two trees' training steps alternating in one process",
    summary: "Two sides (a kappa tree — the checkout `.` or a git revision — plus runtime options, e.g. " +
      "`.,nchwc=false`) train bench perf's ViT or the MobileNetV2 model in one process, steps alternating, a " +
      "fresh process per round; prints the medians, the per-pair ratios and the load (Markdown on stdout).",
    flags: {
      a: {
        form: "equals",
        metavar: "REV[,k=v]",
        value: { _tag: "Text" },
        description: "side A (default HEAD~1)",
      },
      b: { form: "equals", metavar: "REV[,k=v]", value: { _tag: "Text" }, description: "side B (default .)" },
      model: {
        form: "equals",
        metavar: "vit",
        value: { _tag: "Choice", choices: ["vit", "mobilenet"] },
        description: "the model trained (default vit)",
      },
      threads: {
        form: "equals",
        metavar: "1,2",
        value: { _tag: "IntList", bounds: BOUNDS.threads },
        description: "intra-op threads (default 1,2)",
      },
      rounds: {
        form: "equals",
        metavar: "N",
        value: int(BOUNDS.repeats),
        description: "processes per T (default 3)",
      },
      steps: {
        form: "equals",
        metavar: "N",
        value: int(BOUNDS.repeats),
        description: "timed steps per side (default 8)",
      },
      warmup: {
        form: "equals",
        metavar: "N",
        value: int(BOUNDS.warmup),
        description: "warm-up steps (default 2)",
      },
    },
    run: async (args) => (await import("./ab.ts")).main(args),
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
      rounds: {
        form: "space",
        metavar: "R",
        value: int(BOUNDS.repeats),
        description:
          "rounds over the variants per size, interleaved; a figure is the fastest of all (default 1)",
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
  scale: {
    title: "data-parallel training over MPI: ranks against threads, the all-reduce, a projection",
    summary: "The quickstart's images/s on 1 rank × 1 thread, 2 ranks × 1 thread and 1 rank × 2 threads, " +
      "the all-reduce's time, bytes and share of the step, and the projected scaling efficiency at 8, 64 " +
      'and 512 ranks; rewrites BENCHMARKS.md\'s "Data-parallel training (MPI)" (needs Open MPI).',
    flags: {
      steps: {
        form: "space",
        metavar: "S",
        value: int(BOUNDS.steps),
        description: "training steps per run (default 40)",
      },
      rounds: {
        form: "space",
        metavar: "R",
        value: int(BOUNDS.repeats),
        description: "runs per configuration, alternating the configurations (default 2)",
      },
      interconnect: {
        form: "space",
        metavar: "GBPS",
        value: int({ min: 1, max: 10_000 }),
        description: "the projection's interconnect bandwidth per rank in GB/s (default 25)",
      },
      quick: quick("one round of 20 steps; BENCHMARKS.md is left unchanged"),
    },
    run: async (args) => (await import("./scale.ts")).main(args),
  },
  frozen: {
    title: "the quickstart's head-only step on a frozen backbone's feature cache against fine-tuning",
    summary: "The quickstart's training step fine-tuning, with the backbone frozen and run every step, and " +
      "with the head alone on cached features, in alternating rounds; the feature cache's build time and " +
      'size; rewrites BENCHMARKS.md\'s "Frozen backbone (feature cache)".',
    flags: {
      rounds: {
        form: "equals",
        metavar: "N",
        value: int(BOUNDS.repeats),
        description: "alternating rounds (default 5)",
      },
      steps: {
        form: "equals",
        metavar: "N",
        value: int(BOUNDS.repeats),
        description: "timed steps per side and round (default 5)",
      },
      threads: {
        form: "equals",
        metavar: "1,2",
        value: { _tag: "IntList", bounds: BOUNDS.threads },
        description: "the intra-op thread counts measured (default 1,2; --train uses the last)",
      },
      rebuild: quick("build the feature cache afresh in a temporary folder to time its build now"),
      train: quick("also train experiments/quickstart-frozen.ts end to end and report its time and mIoU"),
      quick: quick("one round of 2 steps; BENCHMARKS.md is left unchanged"),
    },
    run: async (args) => (await import("./frozen.ts")).main(args),
  },
  quantize: {
    title: "a run's int8 exports against its float32 export",
    summary:
      "The int8 exports of a run, in each weight format, against its float32 export: mIoU through the " +
      "export's documented steps, changed pixels and one-image latency, with which u8·s8 kernels ONNX Runtime " +
      "runs (VNNI or not); rewrites this CPU kind's subsection of BENCHMARKS.md's \"Reduced precision (export)\".",
    positionals: [{
      name: "run-dir",
      required: true,
      description: "the run folder whose exports are compared",
    }],
    flags: { quick: quick("evaluate 10 frames; BENCHMARKS.md is left unchanged") },
    run: async (args) => (await import("./quantize.ts")).main(args),
  },
  "quantize-isa": {
    title: "the int8 exports' outputs on two kinds of CPU, compared",
    summary: "Writes the float32 and int8 exports' logits and classes on 8 validation frames (run it once " +
      "natively and once under bench/cpuid_avx2.c), or with --compare prints how two such files differ: the " +
      "largest logit difference and the shares of bit-equal logits and equal classes.",
    positionals: [
      { name: "run-dir", required: true, description: "the run folder (with --compare: the first file)" },
      {
        name: "out.json",
        required: true,
        description: "the file to write (with --compare: the second file)",
      },
    ],
    flags: { compare: quick("compare two files written before instead") },
    run: async (args) => (await import("./quantize_isa.ts")).main(args),
  },
  web: {
    title: "kappa's page in headless Chromium against onnxruntime-node",
    summary:
      "Inference and training step time of a run in the browser tab (onnxruntime-web: wasm on 1 thread " +
      "and on every core, WebGPU where there is an adapter) against onnxruntime-node on the same files; " +
      'rewrites BENCHMARKS.md\'s "Web (onnxruntime-web in the tab)" (needs Chromium: .ci/setup).',
    positionals: [{
      name: "run-dir",
      required: true,
      description: "the run whose export and training step are measured (e.g. a quickstart run)",
    }],
    flags: { quick: quick("one round of fewer runs; BENCHMARKS.md is left unchanged") },
    run: async (args) => (await import("./web.ts")).main(args),
  },
};

/** The experiment grids, which were bench suites before they moved to `deno task grid`. */
const MOVED_TO_GRID = { ablation: "grid", larvseg: "grid", panoptic: "grid" } as const;

if (import.meta.main) {
  const code = await dispatch("bench", SUITES, Deno.args, MOVED_TO_GRID);
  // A suite that finished ends when its last pending work does.
  if (code !== 0) Deno.exit(code);
}
