/**
 * `deno task bench engine`: the MatMul peak through ONNX Runtime (the CPU limit), and one MLP training
 * step — our fused graph against eager PyTorch on the same initial parameters and batch — at equal
 * thread counts. Prints the figures and rewrites the "Engine" section of BENCHMARKS.md.
 *
 * One thing runs at a time: ORT sessions are released before the peer starts, so the two sides never
 * compete for the cores. The machine may be shared, so the measurements are taken in rounds that
 * alternate between the sides (a burst of outside load then hits both, not one), and the load other
 * processes put on the CPU meanwhile is measured and reported.
 */
import { Effect } from "effect";
import { execute, graphStage, type Plan, plan, type Value } from "../mod.ts";
import { machine } from "./machine.ts";
import { measureMatmul, PEAK_SIZES, type Repeats, timeGraph, timeRuns } from "./measure.ts";
import {
  MLP,
  mlpFeeds,
  mlpTrainingGraph,
  peerInputs,
  stateRoundTripGraph,
  stateSize,
  stepFlops,
} from "./mlp.ts";
import { blasAlternative, ensurePeer } from "./peer_setup.ts";
import { describeBlas, runPeer } from "./peer.ts";
import { ownMinorFaults, QUIET_LOAD, waitForQuiet, withLoad } from "./load.ts";
import { poolRounds, type Round } from "./rounds.ts";
import { profileSteps } from "./profile.ts";
import { recordSection } from "../figures/markdown.ts";
import { checkEqualWork } from "./comparison.ts";
import { type EngineFigures, renderEngine } from "./report.ts";

const THREADS = [1, 2];
const ROUNDS = 4;
const SEED = 0;
/** Per round; the samples of all rounds are pooled. */
const STEP_REPEATS: Repeats = { warmup: 10, runs: 20 };
const MATMUL_REPEATS: Repeats = { warmup: 3, runs: 10 };
const PROFILE_REPEATS: Repeats = { warmup: 5, runs: 20 };
/** Steps whose losses must agree with PyTorch's (the first warm-up steps of each run). */
const CHECK_STEPS = 5;
/** How long to wait for other processes to go quiet before starting, and before each side's turn. */
const QUIET_WAIT_SECONDS = { start: 60, turn: 5 };
/** The peer's side of a request: the same step and MatMul sizes. */
const PEER = {
  ...STEP_REPEATS,
  lr: MLP.lr,
  momentum: MLP.momentum,
  matmul: PEAK_SIZES,
  matmulRepeats: MATMUL_REPEATS,
};
const BENCHMARKS = new URL("../BENCHMARKS.md", import.meta.url);

interface OurSteps {
  readonly ms: number[];
  readonly losses: number[];
  /** Minor page faults per timed step: fresh pages mapped in for the output arrays. */
  readonly faultsPerStep: number;
  /** The state before the first step: the parameters the peer starts from. */
  readonly initial: Map<string, Value>;
}

/** Trains `p` from its seeded initial state on the same feeds every step, timing each step. */
const timeTrainingSteps = (p: Plan, feeds: Record<string, Value>, threads: number): Promise<OurSteps> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(p, { seed: SEED, threads, optimization: "all" });
    const initial = new Map(ex.state); // runs replace the entries; the initial arrays stay untouched
    const warm = yield* timeRuns(ex.run(feeds), { warmup: STEP_REPEATS.warmup, runs: 0 });
    const faults = ownMinorFaults();
    const { ms, results } = yield* timeRuns(ex.run(feeds), { warmup: 0, runs: STEP_REPEATS.runs });
    return {
      ms,
      initial,
      faultsPerStep: (ownMinorFaults() - faults) / STEP_REPEATS.runs,
      losses: [...warm.results, ...results].map((out) => out.get("loss")!.data[0] as number),
    };
  })));

export const main = async (_args: string[]): Promise<void> => {
  const started = performance.now();
  const python = ensurePeer();
  const g = mlpTrainingGraph(MLP);
  const p = plan(g.name, g, [graphStage(g)]);
  const roundTrip = stateRoundTripGraph(p);
  const peerFile = await Deno.makeTempFile({ prefix: "kappa-bench-", suffix: ".safetensors" });
  const rounds: Round[] = [];
  const load = await waitForQuiet(QUIET_LOAD, QUIET_WAIT_SECONDS.start);
  if (load >= QUIET_LOAD) {
    console.error(`bench engine: other processes keep ${load.toFixed(2)} cores busy; measuring anyway`);
  }
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const threads of THREADS) {
        console.error(`bench engine: round ${round}/${ROUNDS}, T=${threads}: ours…`);
        await waitForQuiet(QUIET_LOAD, QUIET_WAIT_SECONDS.turn);
        const ours = await withLoad(async () => {
          const matmul = [];
          for (const n of PEAK_SIZES) matmul.push(await measureMatmul(n, threads, MATMUL_REPEATS));
          const steps = await timeTrainingSteps(p, mlpFeeds(MLP), threads);
          const stateMs = await timeGraph(roundTrip, {}, threads, STEP_REPEATS);
          return { matmul, steps, stateMs };
        });
        if (rounds.length === 0) {
          await Deno.writeFile(peerFile, peerInputs(MLP, g, ours.result.steps.initial));
        }
        console.error(`bench engine: round ${round}/${ROUNDS}, T=${threads}: PyTorch…`);
        await waitForQuiet(QUIET_LOAD, QUIET_WAIT_SECONDS.turn);
        const peer = await withLoad(() =>
          Promise.resolve(runPeer(python, { inputs: peerFile, threads, ...PEER }))
        );
        rounds.push({
          threads,
          matmul: ours.result.matmul,
          ourMs: ours.result.steps.ms,
          ourLosses: ours.result.steps.losses,
          ourFaultsPerStep: ours.result.steps.faultsPerStep,
          stateMs: ours.result.stateMs,
          peer: peer.result,
          load: { ours: ours.load, peer: peer.load },
        });
      }
    }
  } finally {
    await Deno.remove(peerFile).catch(() => {});
  }
  const peer = rounds[0].peer;
  const byThreads = [];
  for (const threads of THREADS) {
    console.error(`bench engine: T=${threads}: ORT profile of our step…`);
    const profile = await profileSteps(p, mlpFeeds(MLP), threads, PROFILE_REPEATS);
    byThreads.push({ ...poolRounds(threads, rounds), profile });
  }
  const figures: EngineFigures = {
    date: new Date().toISOString().slice(0, 10),
    seconds: (performance.now() - started) / 1000,
    machine: machine(),
    torch: peer.torch,
    blas: describeBlas(peer, blasAlternative()),
    spec: MLP,
    flops: stepFlops(g),
    stateFloats: stateSize(p),
    checkSteps: CHECK_STEPS,
    rounds: ROUNDS,
    stepRepeats: STEP_REPEATS,
    matmulRepeats: MATMUL_REPEATS,
    profileRuns: PROFILE_REPEATS.runs,
    quietWait: QUIET_WAIT_SECONDS,
    byThreads,
  };
  const body = renderEngine(figures);
  console.log(`## Engine\n${body}`);
  if (!byThreads.every((t) => checkEqualWork(t.ourLosses, t.peerLosses, CHECK_STEPS).passed)) {
    console.error("bench engine: the equal work check FAILED; BENCHMARKS.md is left unchanged");
    Deno.exit(1);
  }
  await recordSection(BENCHMARKS.pathname, "Engine", body);
  console.error(`bench engine: wrote the Engine section of ${BENCHMARKS.pathname}`);
};
