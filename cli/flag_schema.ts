/**
 * The command line's flags and arguments with their bounds, in one place: every numeric flag of every
 * command (and of `bench`) is an integer within documented bounds, every path is valid UTF-8, and a value
 * out of bounds is refused while the command line is parsed, before anything runs or is written, as one
 * line naming the flag (`train: --steps -5: must be an integer from 1 to 10,000,000; see …`).
 *
 * Paths typed by the user are resolved against the folder they typed the command in (cli/user_path.ts).
 *
 * The bounds that a spec has too (train.steps, train.seed) come from the spec's own (dsl/training.ts), so
 * a flag is refused exactly when the same value in the experiment file would be.
 */
import { Option } from "effect";
import { Argument, Flag } from "effect/cli";
import { MAX_SEED, MAX_STEPS } from "../dsl/training.ts";
import { userPath } from "./user_path.ts";

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
  /** Intra-op threads of ONNX Runtime. */
  threads: { min: 1, max: maxThreads(), note: MACHINE },
  /** Data-loading Worker threads (0: load on the main thread). */
  workers: { min: 0, max: maxThreads(), note: MACHINE },
  /** A number of images (`--limit`, `--eval-limit`, `--calibration-images`). */
  images: { min: 1, max: 10_000_000 },
  /** Classes listed per image (`classify --top`). */
  top: { min: 1, max: 100_000 },
  /** Seeds of an experiment grid (`bench … --seeds`). */
  seeds: { min: 1, max: 100 },
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

/** An integer flag within `bounds`; its help text ends with the bounds. */
export const intFlag = (name: string, bounds: IntBounds, description: string): Flag.Flag<number> =>
  Flag.Int(name).pipe(
    Flag.filterMap(
      (n) => (outOfBounds(n, bounds) === undefined ? Option.some(n) : Option.none()),
      () => `must be ${boundsText(bounds)}`,
    ),
    Flag.withDescription(`${description}; ${boundsText(bounds)}`),
  );

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

const pathOption = (p: string) => (badPath(p) === undefined ? Option.some(p) : Option.none());

/** A path flag: valid UTF-8, not empty, relative to the folder the user typed the command in. */
export const pathFlag = (name: string, description: string): Flag.Flag<string> =>
  Flag.String(name).pipe(
    Flag.filterMap(pathOption, (p) => badPath(p)!),
    Flag.map(userPath),
    Flag.withDescription(description),
  );

/** The experiment argument of train, spec and describe. */
export const experimentArgument = (): Argument.Argument<string> =>
  pathArgument("experiment", "experiment .ts module or .json file");

/** The run-dir argument of eval, predict and export. */
export const runArgument = (): Argument.Argument<string> =>
  pathArgument("run-dir", "a run folder written by train (runs/<name>-<hash8>)");

/** The --checkpoint flag of eval, predict and export. */
export const checkpointFlag = (): Flag.Flag<Option.Option<string>> =>
  pathFlag(
    "checkpoint",
    "checkpoint file (default: best.safetensors, the highest mIoU of the run's evaluations, all on one " +
      "image set; else the newest)",
  ).pipe(Flag.optional);

/** A path argument: valid UTF-8, not empty, relative to the folder the user typed the command in. */
export const pathArgument = (name: string, description: string): Argument.Argument<string> =>
  Argument.String(name).pipe(
    Argument.filterMap(pathOption, (p) => badPath(p)!),
    Argument.map(userPath),
    Argument.withDescription(description),
  );
