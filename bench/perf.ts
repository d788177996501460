/**
 * `deno task bench perf`: a Segmenter + RankSeg model's training step and one-image inference against
 * the same model in eager PyTorch, model FLOP utilisation against the MatMul peak measured in the same
 * run, the head's time and memory as the vocabulary grows, the data pipeline against the training step,
 * and the runtime's per-step overhead — at T = 1 and 2 threads on both sides. Prints the table and
 * rewrites this CPU kind's "Performance (segmenter) on <CPU>" section of BENCHMARKS.md. `--model=mobilenet` measures the
 * MobileNetV2 segmenter against PyTorch 2 instead (bench/perf_mobilenet.ts, its own section).
 *
 * The machine may be shared: the bench waits for other processes to go quiet, measures the sides one
 * at a time in alternating rounds, and reports the load other processes put on the CPU meanwhile.
 */
import { Effect } from "effect";
import {
  camvid,
  defaultWorkers,
  exportedModel,
  exportModel,
  graphStage,
  inferenceGraph,
  optimizerConfig,
  plan,
  trainingGraph,
  trainPipeline,
} from "../mod.ts";
import { describe, toOnnx } from "../profiling.ts";
import quickstart from "../experiments/quickstart.ts";
import { machine, sectionTitle } from "./machine.ts";
import { measureMatmul, PEAK_SIZES, type Repeats } from "./measure.ts";
import { stateSize, stepFlops } from "./mlp.ts";
import { blasAlternative, ensurePeer } from "./peer_setup.ts";
import { ensurePeerVenv, VENV } from "./peer_venv.ts";
import {
  configsOf,
  runSide,
  type Side,
  type SideResult,
  SIDES,
  type ThreadConfig,
  tuneSide,
  type Tuning,
} from "./peers.ts";
import { type OursThread, peersEqualWork, type PeersFigures, type SideFigures } from "./peers_report.ts";
import { describeBlas } from "./peer.ts";
import { averageLoad, type Load, QUIET_LOAD, waitForQuiet, withLoad } from "./load.ts";
import { recordSection } from "../figures/markdown.ts";
import { summarize } from "../figures/stats.ts";
import { checkEqualWork } from "./comparison.ts";
import { loaderImagesPerSecond } from "./data.ts";
import { graphOps } from "./optimized_graph.ts";
import {
  peerInputs,
  PERF_MODEL,
  perfBatch,
  perfExperiment,
  perfFeeds,
  perfTrainingGraph,
  shapesOf,
  syntheticBatch,
  trainingFeeds,
} from "./segmenter_model.ts";
import {
  ENCODER_MAX_CLASSES,
  HEAD_SETTING,
  HEAD_VARIANTS,
  headModel,
  KAPPA,
  runHeadChild,
  VOCABULARY,
} from "./vocab.ts";
import {
  initialState,
  profileInChild,
  profileInference,
  runSegmenterPeer,
  type SegmenterPeerResult,
  timeInference,
  timeTraining,
} from "./perf_runs.ts";
import {
  agreement,
  type LoaderFigure,
  type PerfFigures,
  type PerfThread,
  renderPerf,
  type VocabRow,
} from "./perf_report.ts";

/** `--quick`: one short round of everything, to try the bench out; BENCHMARKS.md is not written. */
const QUICK = Deno.args.includes("--quick");
/** `--sides=eager,jax`: only these PyTorch 2 / JAX sides (default all; SIDES in bench/peers.ts). */
const ONLY_SIDES = Deno.args.find((a) => a.startsWith("--sides="))?.slice("--sides=".length).split(",");
const THREADS = [1, 2];
const ROUNDS = QUICK ? 1 : 3;
const SEED = 0;
const repeats = (warmup: number, runs: number): Repeats =>
  QUICK ? { warmup: Math.min(warmup, 1), runs: Math.min(runs, 5) } : { warmup, runs };
/** Per round; the samples of all rounds are pooled. */
const TRAIN_REPEATS = QUICK ? { warmup: 3, runs: 2 } : repeats(3, 5); // ≥ CHECK_STEPS losses
const INFER_REPEATS = repeats(5, 20);
const MATMUL_REPEATS = repeats(3, 10);
const PROFILE_REPEATS = repeats(3, 5);
const VOCAB_REPEATS = repeats(3, 15);
const QUICKSTART_REPEATS = repeats(3, 10);
/** Steps whose losses must agree with PyTorch's. */
const CHECK_STEPS = 5;
/** The short runs each peer's thread settings are tried with (full runs only). */
const TUNE_REPEATS = { warmup: 2, runs: 3 };
/** Steps over which the reduced-precision sides' loss is compared with our float32 loss. */
const TRACK_STEPS = 30;
/** Sides whose first TRACK_STEPS losses are recorded (bf16, and float32 PyTorch for scale). */
const TRACKED = new Set(["eager", "eager-bf16", "compile-bf16"]);
const QUIET_WAIT_SECONDS = QUICK ? { start: 2, turn: 1 } : { start: 60, turn: 5 };
const SECTION = "Performance (segmenter)";
const BENCHMARKS = new URL("../BENCHMARKS.md", import.meta.url);

const log = (line: string) => console.error(`bench perf: ${line}`);

interface Round {
  readonly threads: number;
  readonly peak: number;
  readonly train: { readonly ms: number[]; readonly losses: number[] };
  readonly inferMs: number[];
  /** The int8 export's one-image inference (the reduced-precision class). */
  readonly inferInt8Ms: number[];
  readonly outputs: Awaited<ReturnType<typeof timeInference>>["outputs"];
  readonly peer: SegmenterPeerResult;
  readonly load: { readonly ours: Load; readonly peer: Load };
}

const describeModel = (): string => {
  const s = PERF_MODEL.spec;
  const b = s.backbone, xi = s.xi, psi = s.psi;
  if (b._tag !== "ViT" || xi?._tag !== "TransformerEncoder" || psi?._tag !== "MaskTransformer") return "";
  const k = s.select._tag === "TopK" ? s.select.k : s.classes;
  return `Segmenter + RankSeg: ViT (no class token; d = ${b.dim}, ${b.heads} heads, depth ${b.depth}, patch ` +
    `${b.patchSize}, MLP ratio ${b.mlpRatio}), neck linear to d = ${s.headDim}; ξ = transformer encoder (one ` +
    `block over ${xi.pool}×${xi.pool} pooled tokens and K = ${s.classes} class embeddings, ${xi.heads} heads) ` +
    `with the asymmetric loss (weight ${s.multiLabelLoss?.weight}); top-κ = ${k}; ψ = mask transformer ` +
    `(${psi.layers} layers, ${psi.heads} heads, cosine logits); rank-adaptive τ; pixel cross-entropy on the ` +
    `upsampled rank logits.`;
};

/** The quickstart experiment's training step time at `threads` (data-pipeline ratio). */
const quickstartStepMs = async (threads: number) => {
  const [height, width] = quickstart.data.train.cropSize;
  const shapes = { batch: quickstart.train.batchSize, height, width, trainSize: [height, width] as const };
  const g = trainingGraph(quickstart.model, shapes, optimizerConfig(quickstart.train));
  const feeds = trainingFeeds(syntheticBatch(quickstart.model, shapes.batch, [height, width]), [
    height,
    width,
  ], 1e-3);
  return (await timeTraining(plan(g.name, g, [graphStage(g)]), feeds, threads, QUICKSTART_REPEATS)).ms;
};

const vocabulary = async (): Promise<VocabRow[]> => {
  const dir = await Deno.makeTempDir({ prefix: "kappa-vocab-" });
  const rows: VocabRow[] = [];
  try {
    for (const variant of HEAD_VARIANTS) {
      for (const classes of VOCABULARY) {
        const model = headModel(variant, classes, SEED);
        const row = { variant, classes, params: model.params, flops: model.flops };
        if (variant === "ranksegEncoder" && classes > ENCODER_MAX_CLASSES) {
          rows.push(row);
          continue;
        }
        const file = `${dir}/${variant}-${classes}.onnx`;
        await Deno.writeFile(file, model.bytes);
        const runs = [];
        for (const threads of THREADS) {
          log(`vocabulary: ${variant}, K = ${classes}, T=${threads}`);
          await waitForQuiet(QUIET_LOAD, QUIET_WAIT_SECONDS.turn);
          const r = await runHeadChild(file, threads, VOCAB_REPEATS);
          runs.push({
            threads,
            ms: summarize(r.ms),
            peakRssMiB: r.peakRssKiB / 1024,
            rssBeforeSessionMiB: r.rssBeforeSessionKiB / 1024,
          });
        }
        rows.push({ ...row, runs });
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return rows;
};

const loaders = async (): Promise<{ quickstart: LoaderFigure; perf: LoaderFigure }> => {
  const workers = defaultWorkers();
  const measure = (label: string, pipeline: typeof quickstart.data.train, batch: number) =>
    Effect.runPromise(loaderImagesPerSecond(camvid, pipeline, batch, workers)).then((imagesPerSecond) => ({
      label,
      batch,
      crop: pipeline.cropSize,
      workers,
      imagesPerSecond,
    }));
  log("data pipeline: quickstart setting");
  await waitForQuiet(QUIET_LOAD, QUIET_WAIT_SECONDS.turn);
  const q = await measure("quickstart", quickstart.data.train, quickstart.train.batchSize);
  log("data pipeline: perf model setting");
  await waitForQuiet(QUIET_LOAD, QUIET_WAIT_SECONDS.turn);
  const pipeline = trainPipeline({ cropSize: [PERF_MODEL.size, PERF_MODEL.size] });
  const p = await measure("perf model", pipeline, PERF_MODEL.batch);
  return { quickstart: q, perf: p };
};

/** A peer side's measurements at one T, gathered over the rounds. */
interface SideRuns {
  tuning?: Tuning;
  config: ThreadConfig;
  results: SideResult[];
  loads: Load[];
}

/**
 * The PyTorch 2 and JAX sides that can run here, each with its thread setting per T: the fastest of
 * its settings in a short run each (full runs), or its first setting (--quick).
 */
const prepareSides = (inputs: string, env: Record<string, string>, missing: string[]) => {
  const venv = ensurePeerVenv(log);
  missing.push(...venv.missing);
  for (const line of venv.missing) log(`${line}; continuing with the Debian PyTorch 1.13 peer`);
  const sides = SIDES.filter((s) => (s.framework === "torch" ? venv.torch : venv.jax))
    .filter((s) => !ONLY_SIDES || ONLY_SIDES.includes(s.name));
  const runs = new Map<Side, Map<number, SideRuns>>();
  const firstStep = new Map<Side, number>();
  for (const side of sides) {
    const byThreads = new Map<number, SideRuns>();
    try {
      for (const threads of THREADS) {
        if (QUICK) {
          byThreads.set(threads, { config: configsOf(side)[0], results: [], loads: [] });
          continue;
        }
        log(`${side.label}, T=${threads}: trying ${configsOf(side).length} thread settings…`);
        const { tuning, first } = tuneSide(venv.python, side, inputs, threads, TUNE_REPEATS, env);
        if (!firstStep.has(side)) firstStep.set(side, first.firstStepSeconds ?? NaN);
        byThreads.set(threads, { tuning, config: tuning.tried[tuning.best].config, results: [], loads: [] });
      }
      runs.set(side, byThreads);
    } catch (e) {
      missing.push(`${side.label} failed (${String(e).split("\n")[0]})`);
      log(String(e));
    }
  }
  return { python: venv.python, runs, firstStep };
};

const mib = (kib: number | undefined) => (kib ?? NaN) / 1024;

/** Our peak RSS of a training step at `threads`, in a Deno process of its own. */
const ourStepMemory = async (threads: number): Promise<number> => {
  const child = new URL("./step_memory_child.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", child, JSON.stringify({ threads, runs: 3 })],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`step memory child failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
  }
  return mib(JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!).peakRssKiB);
};

export const main = async (args: string[]): Promise<void> => {
  // `--model=mobilenet`: the MobileNetV2 segmenter against PyTorch 2 (its own section).
  if (args.includes("--model=mobilenet")) return (await import("./perf_mobilenet.ts")).main(args);
  const started = performance.now();
  const python = ensurePeer();
  const pm = PERF_MODEL;
  const g = perfTrainingGraph(pm);
  const p = plan(g.name, g, [graphStage(g)]);
  const feeds = perfFeeds(pm);
  const image = perfBatch(pm).images.slice(0, 3 * pm.size * pm.size);
  const initial = await initialState(p, SEED);
  const model = Effect.runSync(exportedModel(perfExperiment(pm), initial));
  const exported = exportModel(perfExperiment(pm), initial, model).bytes;
  // The reduced-precision inference class: the same export with its parameter matmuls in int8 (the perf
  // model has no convolution, so int8-static would be the same model; BENCHMARKS.md "Reduced precision").
  const exportedInt8 = exportModel(perfExperiment(pm), initial, model, { quantize: "int8" }).bytes;
  const peerFile = await Deno.makeTempFile({ prefix: "kappa-perf-", suffix: ".safetensors" });
  await Deno.writeFile(peerFile, peerInputs(pm, g, initial));

  // torch.compile's cache persists beside the venv (a cold compile takes minutes on two busy cores);
  // whether this run found it cold is reported beside the first step's time.
  const inductorCache = `${VENV}/inductor-cache`;
  const coldCompile = !(await Deno.stat(inductorCache).then(() => true, () => false));
  const sideEnv = { TORCHINDUCTOR_CACHE_DIR: inductorCache };
  const missing: string[] = [];
  const peers = prepareSides(peerFile, sideEnv, missing);

  const rounds: Round[] = [];
  let peerTracks: { ours: number[]; tracks: Map<Side, number[]> } = { ours: [], tracks: new Map() };
  const load = await waitForQuiet(QUIET_LOAD, QUIET_WAIT_SECONDS.start);
  if (load >= QUIET_LOAD) log(`other processes keep ${load.toFixed(2)} cores busy; measuring anyway`);
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const threads of THREADS) {
        log(`round ${round}/${ROUNDS}, T=${threads}: ours…`);
        await waitForQuiet(QUIET_LOAD, QUIET_WAIT_SECONDS.turn);
        const ours = await withLoad(async () => {
          let peak = 0;
          for (const n of PEAK_SIZES) {
            peak = Math.max(peak, (await measureMatmul(n, threads, MATMUL_REPEATS)).gflops);
          }
          const train = await timeTraining(p, feeds, threads, TRAIN_REPEATS, { seed: SEED });
          const infer = await timeInference(exported, image, pm.size, threads, INFER_REPEATS);
          const inferInt8 = await timeInference(exportedInt8, image, pm.size, threads, INFER_REPEATS);
          return { peak, train, infer, inferInt8 };
        });
        log(`round ${round}/${ROUNDS}, T=${threads}: PyTorch…`);
        await waitForQuiet(QUIET_LOAD, QUIET_WAIT_SECONDS.turn);
        const peer = await withLoad(() =>
          Promise.resolve(runSegmenterPeer(python, peerFile, threads, TRAIN_REPEATS, INFER_REPEATS))
        );
        rounds.push({
          threads,
          peak: ours.result.peak,
          train: ours.result.train,
          inferMs: ours.result.infer.ms,
          inferInt8Ms: ours.result.inferInt8.ms,
          outputs: ours.result.infer.outputs,
          peer: peer.result,
          load: { ours: ours.load, peer: peer.load },
        });
        for (const [side, byThreads] of peers.runs) {
          const r = byThreads.get(threads)!;
          log(`round ${round}/${ROUNDS}, T=${threads}: ${side.label}…`);
          await waitForQuiet(QUIET_LOAD, QUIET_WAIT_SECONDS.turn);
          try {
            const request = { inputs: peerFile, threads, train: TRAIN_REPEATS, infer: INFER_REPEATS };
            const m = await withLoad(() =>
              Promise.resolve(runSide(peers.python, side, r.config, request, sideEnv))
            );
            if (!peers.firstStep.has(side)) peers.firstStep.set(side, m.result.firstStepSeconds ?? NaN);
            r.results.push(m.result);
            r.loads.push(m.load);
          } catch (e) {
            missing.push(`${side.label} failed (${String(e).split("\n")[0]})`);
            log(String(e));
            peers.runs.delete(side);
          }
        }
      }
    }
    // The loss over the first TRACK_STEPS steps: ours in float32, and the tracked sides.
    const t = THREADS[THREADS.length - 1];
    log(`loss over ${TRACK_STEPS} steps, T=${t}: ours and ${[...TRACKED].join(", ")}…`);
    const ourTrack =
      (await timeTraining(p, feeds, t, { warmup: 0, runs: TRACK_STEPS }, { seed: SEED })).losses;
    const tracks = new Map<Side, number[]>();
    for (const [side, byThreads] of peers.runs) {
      if (!TRACKED.has(side.name)) continue;
      const request = {
        inputs: peerFile,
        threads: t,
        train: { warmup: 0, runs: TRACK_STEPS - 1 },
        infer: null,
      };
      try {
        const r = runSide(peers.python, side, byThreads.get(t)!.config, request, sideEnv);
        tracks.set(side, [...(r.losses ?? [])]);
      } catch (e) {
        missing.push(`${side.label}'s ${TRACK_STEPS}-step loss failed (${String(e).split("\n")[0]})`);
      }
    }
    peerTracks = { ours: ourTrack, tracks };
  } finally {
    await Deno.remove(peerFile).catch(() => {});
  }

  const byThreads: PerfThread[] = [];
  for (const threads of THREADS) {
    const mine = rounds.filter((r) => r.threads === threads);
    log(`T=${threads}: ORT profile of our step, without and with host-memory recycling…`);
    await waitForQuiet(QUIET_LOAD, QUIET_WAIT_SECONDS.turn);
    const before = await profileInChild(threads, false, PROFILE_REPEATS);
    await waitForQuiet(QUIET_LOAD, QUIET_WAIT_SECONDS.turn);
    const after = await profileInChild(threads, true, PROFILE_REPEATS);
    let withoutSpinning: PerfThread["withoutSpinning"];
    if (threads > 1) {
      log(`T=${threads}: ours with ONNX Runtime's thread spinning off…`);
      await waitForQuiet(QUIET_LOAD, QUIET_WAIT_SECONDS.turn);
      const r = await withLoad(async () => ({
        train: await timeTraining(p, feeds, threads, TRAIN_REPEATS, { seed: SEED, spinning: false }),
        infer: await timeInference(exported, image, pm.size, threads, INFER_REPEATS, false),
      }));
      withoutSpinning = {
        train: summarize(r.result.train.ms),
        infer: summarize(r.result.infer.ms),
        load: r.load.cores,
      };
    }
    log(`T=${threads}: ORT profile of our inference…`);
    await waitForQuiet(QUIET_LOAD, QUIET_WAIT_SECONDS.turn);
    const inferProfile = await profileInference(exported, image, pm.size, threads, INFER_REPEATS);
    log(`T=${threads}: quickstart training step…`);
    await waitForQuiet(QUIET_LOAD, QUIET_WAIT_SECONDS.turn);
    const quickstartStep = summarize(await quickstartStepMs(threads));
    byThreads.push({
      threads,
      peak: Math.max(...mine.map((r) => r.peak)),
      train: {
        ours: summarize(mine.flatMap((r) => r.train.ms)),
        peer: summarize(mine.flatMap((r) => [...r.peer.stepMs])),
      },
      infer: {
        ours: summarize(mine.flatMap((r) => r.inferMs)),
        peer: summarize(mine.flatMap((r) => [...r.peer.inferMs])),
      },
      ourLosses: mine[0].train.losses,
      peerLosses: [...mine[0].peer.losses],
      load: {
        ours: averageLoad(mine.map((r) => r.load.ours)),
        peer: averageLoad(mine.map((r) => r.load.peer)),
      },
      overhead: { before, after },
      quickstartStep,
      inferProfile,
      withoutSpinning,
    });
  }
  log("ONNX Runtime's optimized graphs…");
  const training = p.stages[0];
  const graphs = [
    await graphOps(
      "training step",
      training._tag === "GraphStage"
        ? toOnnx(training.graph, { outputs: training.outputs }).bytes
        : new Uint8Array(),
    ),
    await graphOps("exported model", exported),
  ];
  const ourMemory = new Map<number, number>();
  for (const threads of THREADS) {
    log(`T=${threads}: our training step's peak RSS…`);
    ourMemory.set(threads, await ourStepMemory(threads));
  }
  const sideFigures: SideFigures[] = [...peers.runs].flatMap(([side, byThreads]) => {
    const first = [...byThreads.values()].find((r) => r.results.length)?.results[0];
    if (!first) return [];
    return [{
      side,
      version: side.framework === "jax" ? first.torch : `PyTorch ${first.torch}`,
      backend: first.backend,
      firstStepSeconds: peers.firstStep.get(side) ?? NaN,
      track: peerTracks.tracks.get(side),
      byThreads: THREADS.map((threads) => {
        const r = byThreads.get(threads)!;
        return {
          threads,
          config: r.config.label,
          tried: r.tuning?.tried.map((x) => ({ label: x.config.label, medianMs: x.medianMs })) ?? [],
          train: summarize(r.results.flatMap((x) => [...(x.stepMs ?? [])])),
          infer: summarize(r.results.flatMap((x) => [...(x.inferMs ?? [])])),
          losses: [...(r.results[0]?.losses ?? [])],
          peakRssMiB: Math.max(...r.results.map((x) => mib(x.peakRssKiB))),
          load: averageLoad(r.loads),
        };
      }),
    }];
  });
  const ours: OursThread[] = byThreads.map((t) => ({
    threads: t.threads,
    train: t.train.ours,
    infer: t.infer.ours,
    inferInt8: summarize(rounds.filter((r) => r.threads === t.threads).flatMap((r) => r.inferInt8Ms)),
    losses: t.ourLosses,
    peakRssMiB: ourMemory.get(t.threads) ?? NaN,
  }));
  const peerFigures: PeersFigures = {
    sides: sideFigures,
    missing,
    ours,
    ourTrack: peerTracks.ours,
    trackSteps: TRACK_STEPS,
    checkSteps: CHECK_STEPS,
    tuneRepeats: QUICK ? undefined : TUNE_REPEATS,
    coldCompile,
  };
  const vocab = await vocabulary();
  const loaderFigures = await loaders();

  const first = rounds[0];
  const inference = inferenceGraph(pm.spec, { ...shapesOf(pm, 1) });
  const [qh, qw] = quickstart.data.train.cropSize;
  const figures: PerfFigures = {
    date: new Date().toISOString().slice(0, 10),
    seconds: (performance.now() - started) / 1000,
    machine: machine(),
    torch: first.peer.torch,
    blas: describeBlas(first.peer, blasAlternative()),
    peerThreads: THREADS.map((t) => {
      const r = rounds.find((x) => x.threads === t)!.peer;
      return `T=${t}: torch ${r.torchThreads}, OpenBLAS ${r.blas.openblasThreads ?? "?"}`;
    }).join("; "),
    model: {
      description: describeModel(),
      params: describe(g).at(-1)!.params,
      stateFloats: stateSize(p),
      batch: pm.batch,
      size: pm.size,
      step: stepFlops(g),
      inference: stepFlops(inference),
    },
    quickstart: {
      description:
        `${quickstart.model.backbone._tag} backbone, ψ = ${quickstart.model.psi?._tag ?? "none"}, ` +
        `batch ${quickstart.train.batchSize}, crop ${qh}×${qw}, ${quickstart.train.optimizer._tag}`,
      batch: quickstart.train.batchSize,
      crop: [qh, qw],
    },
    rounds: ROUNDS,
    trainRepeats: TRAIN_REPEATS,
    inferRepeats: INFER_REPEATS,
    profileRepeats: PROFILE_REPEATS,
    vocabRepeats: VOCAB_REPEATS,
    checkSteps: CHECK_STEPS,
    quietWait: QUIET_WAIT_SECONDS,
    byThreads,
    agreement: agreement(first.outputs, first.peer.outputs),
    vocab,
    vocabSetting: { kappa: KAPPA, dim: HEAD_SETTING.dim, grid: HEAD_SETTING.grid },
    loaders: loaderFigures,
    graphs,
    peers: peerFigures,
  };
  const body = renderPerf(figures);
  // One section per CPU kind: a run on another kind of CPU keeps this one's figures.
  const title = sectionTitle(SECTION, figures.machine.cpu);
  console.log(`## ${title}\n${body}`);
  if (QUICK) return log("--quick: BENCHMARKS.md is left unchanged");
  if (
    !byThreads.every((t) => checkEqualWork(t.ourLosses, t.peerLosses, CHECK_STEPS).passed) ||
    !peersEqualWork(peerFigures)
  ) {
    log("the equal work check FAILED; BENCHMARKS.md is left unchanged");
    Deno.exit(1);
  }
  await recordSection(BENCHMARKS.pathname, title, body, 2, SECTION);
  log(`wrote the "${title}" section of ${BENCHMARKS.pathname}`);
};
