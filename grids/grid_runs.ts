/**
 * What every experiment grid (RankSeg ablation, LarvSeg, panoptic, the generic one) does with one of its
 * runs: list it (spec, overrides, folder), train it into its folder unless its evaluation record is there
 * (resuming from its checkpoints when a sitting was interrupted), then read the record. Grids resume
 * across sittings this way, here or as Slurm array tasks.
 */
import { Effect } from "effect";
import { existsSync, readFileSync } from "node:fs";
import { basename, extname, join } from "node:path";
import {
  decodeExperiment,
  type Experiment,
  frozenBackbone as frozenBackboneSpec,
  loadExperiment,
  train,
  withOverrides,
} from "../mod.ts";
import { flag } from "../figures/flags.ts";

/**
 * The flags every grid reads: `--seeds N` (3 by default), `--steps N` (an override of the specs' step
 * count, whose runs get folders of their own), `--frozen-backbone D` (every run trains its head on the
 * frozen backbone with D cached draws per image: `train.frozenBackbone`, folders of their own too),
 * `--only REGEX` (the spec files to run) and `--report-only`.
 */
export const gridFlags = () => ({
  seeds: Number(flag("seeds") ?? 3),
  steps: flag("steps") === undefined ? undefined : Number(flag("steps")),
  frozenBackbone: flag("frozen-backbone") === undefined ? undefined : Number(flag("frozen-backbone")),
  only: new RegExp(flag("only") ?? "."),
  reportOnly: Deno.args.includes("--report-only"),
});

/**
 * One run of a grid: the spec file it trains, the grid's overrides of that spec, its folder, and its
 * evaluation record (`<dir>/eval-<test split>.json`, there once the run has finished). A grid lists its
 * runs as these before training any, so that the same list can be trained here or submitted to Slurm
 * (grids/slurm/).
 */
export interface GridRun {
  readonly spec: string;
  readonly steps?: number;
  readonly seed?: number;
  /** Validate every N steps (a learning curve's run); the spec's own setting when absent. */
  readonly evalEvery?: number;
  /** `train.frozenBackbone.draws` for the run, in place of the spec's (absent: the spec's). */
  readonly frozenBackbone?: number;
  readonly dir: string;
  readonly record: string;
}

export const recordIn = (dir: string, e: Experiment) => join(dir, `eval-${e.data.dataset.testSplit}.json`);

/** A grid's overrides of its specs: `--steps N`, `--frozen-backbone D`. */
export interface RunOverrides {
  readonly steps?: number;
  readonly frozenBackbone?: number;
}

/**
 * A row's run for one seed, in `<runs>/<name>[-<steps>steps][-frozen<D>]-s<seed>` (`name`: the
 * experiment's, unless given): an override is another experiment, so its runs get folders of their own.
 */
export const seedRun = (
  runs: string,
  spec: string,
  base: Experiment,
  { steps, frozenBackbone }: RunOverrides,
  seed: number,
  name: string = base.name,
): GridRun => {
  const suffix = `${steps === undefined ? "" : `-${steps}steps`}${
    frozenBackbone === undefined ? "" : `-frozen${frozenBackbone}`
  }`;
  const dir = join(runs, `${name}${suffix}-s${seed}`);
  return {
    spec,
    ...(steps === undefined ? {} : { steps }),
    seed,
    ...(frozenBackbone === undefined ? {} : { frozenBackbone }),
    dir,
    record: recordIn(dir, base),
  };
};

/** The command-line form of a grid's overrides (` --steps N --frozen-backbone D`, or ""), for its report. */
export const overrideFlags = ({ steps, frozenBackbone }: RunOverrides): string =>
  `${steps === undefined ? "" : ` --steps ${steps}`}${
    frozenBackbone === undefined ? "" : ` --frozen-backbone ${frozenBackbone}`
  }`;

/**
 * A run of a spec as written (a learning curve), in `<runs>/<the file's stem>[-frozen<D>]`: no step or
 * seed override, but a grid's frozen backbone, when it has one.
 */
export const specRun = (runs: string, spec: string, e: Experiment, frozenBackbone?: number): GridRun => {
  const dir = join(
    runs,
    `${basename(spec, extname(spec))}${frozenBackbone === undefined ? "" : `-frozen${frozenBackbone}`}`,
  );
  return { spec, ...(frozenBackbone === undefined ? {} : { frozenBackbone }), dir, record: recordIn(dir, e) };
};

/**
 * A learning curve's run of a spec: one seed (0) over `steps` steps, validated every `every`, in
 * `<runs>/curve-<name>-<steps>x<every>[-frozen<D>]` (`grids/plateau.ts` picks its plateau).
 */
export const curveRun = (
  runs: string,
  spec: string,
  base: Experiment,
  { steps, every, frozenBackbone }: { steps: number; every: number; frozenBackbone?: number },
  name: string,
) => {
  const dir = join(
    runs,
    `curve-${name}-${steps}x${every}${frozenBackbone === undefined ? "" : `-frozen${frozenBackbone}`}`,
  );
  return {
    spec,
    steps,
    seed: 0,
    evalEvery: every,
    ...(frozenBackbone === undefined ? {} : { frozenBackbone }),
    dir,
    record: recordIn(dir, base),
  } satisfies GridRun;
};

/** The spec as a grid's frozen-backbone override leaves it (what its report describes). */
export const withGridFrozen = (e: Experiment, frozenBackbone: number | undefined): Experiment =>
  frozenBackbone === undefined
    ? e
    : withOverrides(e, undefined, undefined, frozenBackboneSpec({ draws: frozenBackbone }));

/**
 * The experiment a run trains: its spec file with the grid's overrides (steps, seed, a frozen backbone, a
 * learning curve's validation interval), checked again by the spec rules (an override can break a rule the
 * file kept, e.g. a step count past the limit, a batch too small for the spec's image-level sources, a cache
 * under the independent scheme): a SpecError naming the spec file and the field, before any training.
 */
export const runExperiment = (run: GridRun) =>
  loadExperiment(run.spec).pipe(
    Effect.flatMap((e) => {
      const draws = run.frozenBackbone;
      const frozen = draws === undefined ? undefined : frozenBackboneSpec({ draws });
      const o = withOverrides(e, run.steps, run.seed, frozen);
      const curve = run.evalEvery === undefined
        ? o
        : { ...o, train: { ...o.train, evalEvery: run.evalEvery } };
      return decodeExperiment(curve, run.spec);
    }),
  );

/** How a grid's runs train: threads, Workers, and where their progress lines go (default: nowhere). */
export interface RunOptions {
  readonly threads?: number;
  readonly workers?: number;
  readonly print?: (line: string) => void;
}

/**
 * `--threads T` (intra-op threads per run) and `--workers W` (data-loading Workers), so that two grid
 * processes can share a machine (e.g. one per dataset at one thread each); a resumed run must keep its
 * thread count to stay bitwise the same.
 */
export const runOptions = (): RunOptions => {
  const threads = flag("threads"), workers = flag("workers");
  return {
    ...(threads === undefined ? {} : { threads: Number(threads) }),
    ...(workers === undefined ? {} : { workers: Number(workers) }),
  };
};

/**
 * The run's evaluation record file, after training the run when it has none (resuming from its
 * checkpoints when an earlier sitting was interrupted); undefined when it has none and `reportOnly`
 * says not to train. The line saying which it does goes to stderr, or to `options.print` with train's
 * progress lines.
 */
export const finishedRun = (run: GridRun, reportOnly: boolean, options: RunOptions = runOptions()) =>
  Effect.gen(function* () {
    if (!existsSync(run.record)) {
      if (reportOnly) return undefined;
      const e = yield* runExperiment(run);
      const resume = existsSync(join(run.dir, "checkpoints"));
      (options.print ?? console.error)(`${resume ? "resuming" : "training"} ${run.dir}`);
      yield* train(e, { out: run.dir, resume, print: () => {}, ...options });
    }
    return run.record;
  });

/**
 * One point of a learning curve: the validation mIoU (%; NaN for a multi-label-only model) after `step` steps, the training time before it,
 * and the base / novel means where the evaluation named novel classes (LarvSeg).
 */
export interface CurvePoint {
  readonly step: number;
  readonly mIoU: number;
  readonly seconds: number | null;
  readonly base?: number;
  readonly novel?: number;
  /** The evaluation's other goal figures where it has them (percent): ξ's mAP, the panoptic quality. */
  readonly mAP?: number;
  readonly PQ?: number;
  readonly PQ_th?: number;
  readonly PQ_st?: number;
}

/** The figures besides mIoU that a curve point keeps, where its evaluation record has them. */
export const GOAL_FIGURES = ["mAP", "PQ", "PQ_th", "PQ_st"] as const;

/** The periodic evaluations of a learning-curve run (its metrics.jsonl), or [] when it has not run. */
export const learningCurve = (metrics: string): CurvePoint[] => {
  if (!existsSync(metrics)) return [];
  let seconds: number | null = null;
  const points: CurvePoint[] = [];
  for (const line of readFileSync(metrics, "utf8").split("\n").filter((l) => l.trim() !== "")) {
    const r = JSON.parse(line) as {
      kind?: string;
      step?: number;
      mIoU?: number;
      mIoUBase?: number;
      mIoUNovel?: number;
      elapsedSeconds?: number;
    } & Partial<Record<(typeof GOAL_FIGURES)[number], unknown>>;
    if (r.kind === "train" && typeof r.elapsedSeconds === "number") seconds = r.elapsedSeconds;
    // A multi-label-only model's evaluation has no mIoU (null): its curve is one of mAP (grids/plateau.ts).
    const mIoU = typeof r.mIoU === "number" ? r.mIoU : typeof r.mAP === "number" ? NaN : undefined;
    if (r.kind === "eval" && typeof r.step === "number" && mIoU !== undefined) {
      const split = typeof r.mIoUBase === "number" && typeof r.mIoUNovel === "number"
        ? { base: r.mIoUBase, novel: r.mIoUNovel }
        : {};
      const goals = Object.fromEntries(
        GOAL_FIGURES.flatMap((f) => (typeof r[f] === "number" ? [[f, r[f]]] : [])),
      );
      points.push({ step: r.step, mIoU, seconds, ...split, ...goals });
    }
  }
  return points;
};

/**
 * The RESULTS.md part title of a grid trained under the frozen-backbone protocol (`--frozen-backbone D`): a
 * part of its own, so the fine-tuning part of the same grid stays beside it as the control.
 */
export const protocolTitle = (title: string, frozenDraws: number | undefined): string =>
  frozenDraws === undefined
    ? title
    : `${title} — frozen backbone (${frozenDraws === 0 ? "no cache" : `${frozenDraws} cached draws`})`;
