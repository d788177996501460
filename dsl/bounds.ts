/**
 * The bounds of the numbers and paths a user gives kappa — spec fields, command-line flags, the flags of
 * the benchmarks and grids — in one place, so that a flag is refused exactly when the same value in an
 * experiment file would be (train.steps, train.seed share the spec's bounds, dsl/training.ts).
 */
import { MAX_FEATURE_DRAWS, MAX_SEED, MAX_STEPS } from "./training.ts";

const cores = (): number => Math.max(1, navigator.hardwareConcurrency ?? 1);

/** Threads or Workers beyond this are refused: 4 × the CPU cores, and never more than 256. */
export const maxThreads = (): number => Math.min(256, 4 * cores());

/** An inclusive integer range; `note` says where a maximum that depends on the machine comes from. */
export interface IntBounds {
  readonly min: number;
  readonly max: number;
  readonly note?: string;
}

const MACHINE = "4 × the CPU cores, at most 256";

/** The bounds of each kind of numeric flag. */
export const BOUNDS = {
  /** Training steps (`--steps`, `--extend-steps`): the spec's train.steps bounds. */
  steps: { min: 1, max: MAX_STEPS },
  /** A seed (`--seed`): the spec's train.seed bounds. */
  seed: { min: 0, max: MAX_SEED },
  /** Cached augmentation draws of a frozen backbone (`--frozen-backbone`): train.frozenBackbone.draws's bounds. */
  draws: { min: 0, max: MAX_FEATURE_DRAWS },
  /** Intra-op threads of ONNX Runtime. */
  threads: { min: 1, max: maxThreads(), note: MACHINE },
  /** Processes `train --ranks` starts on this machine (mpirun -np). */
  ranks: { min: 1, max: 4_096 },
  /** Data-loading Worker threads (0: load on the main thread). */
  workers: { min: 0, max: maxThreads(), note: MACHINE },
  /** A number of images (`--limit`, `--eval-limit`, `--calibration-images`). */
  images: { min: 1, max: 10_000_000 },
  /** Classes listed per image (`classify --top`). */
  top: { min: 1, max: 100_000 },
  /** Seeds of an experiment grid (`bench … --seeds`). */
  seeds: { min: 1, max: 100 },
  /** Slurm array tasks running at once (`grid … --slurm --max-parallel N`). */
  parallel: { min: 1, max: 100_000 },
  /** Repetitions of a measurement (`bench … --runs`, `--rounds`, `--batches`, `--steps` of a timing). */
  repeats: { min: 1, max: 100_000 },
  /** Unmeasured repetitions before a measurement (`bench profile --warmup`). */
  warmup: { min: 0, max: 100_000 },
  /** Images per batch (`bench gpu --batch`). */
  batch: { min: 1, max: 4_096 },
  /** A vocabulary size (`bench larvseg-bank --max-classes`). */
  classes: { min: 1, max: 1_000_000 },
  /** An image side in pixels (`bench larvseg-bank --size`). */
  pixels: { min: 1, max: 8_192 },
} as const satisfies Record<string, IntBounds>;

const grouped = (n: number) => n.toLocaleString("en-US");

/** `an integer from 1 to 10,000,000`, `an integer from 1 to 8 (4 × the CPU cores, at most 256)`. */
export const boundsText = (b: IntBounds): string =>
  `an integer from ${grouped(b.min)} to ${grouped(b.max)}${b.note ? ` (${b.note})` : ""}`;

/** Why `value` is refused for bounds `b`, or undefined when it is within them. */
export const outOfBounds = (value: number, b: IntBounds): string | undefined =>
  Number.isSafeInteger(value) && value >= b.min && value <= b.max ? undefined : `must be ${boundsText(b)}`;

/**
 * Why a path given on the command line is refused, or undefined. A name that is not valid UTF-8 reaches
 * Deno with U+FFFD in place of each bad byte: a folder written under it would have another name than the
 * one typed, and a file read under it would not be found.
 */
export const badPath = (path: string): string | undefined =>
  path === ""
    ? "must not be empty"
    : path.includes("\uFFFD")
    ? "is not valid UTF-8 (Deno would read or write it with U+FFFD in place of each bad byte); use a UTF-8 name"
    : undefined;
