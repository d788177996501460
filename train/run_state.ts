/**
 * What a checkpoint carries besides tensors, and the conversions between an executor's state and a
 * checkpoint: everything needed for a resumed run to continue exactly where the original stood.
 */
import { Data, Effect, Schema } from "effect";
import { decodeMetadataJson, type LoadedCheckpoint } from "./checkpoint.ts";
import type { Tensor as SafeTensor } from "../io/safetensors.ts";
import { type Value, value } from "../ir/value.ts";
import { nameKey } from "../ir/init.ts";
import type { ValueSpec } from "../ir/live.ts";
import type { DType, HostArray } from "../ir/dtype.ts";
import { random } from "../core/random.ts";

/** A checkpoint that does not fit the model it is loaded into. */
export class CheckpointMismatch extends Data.TaggedError("CheckpointMismatch")<{
  readonly file: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `${this.file}: ${this.reason}`;
  }
}

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0));

/** The training-loop state a checkpoint records (JSON metadata, decoded with Schema on resume). */
export const LoopState = Schema.Struct({
  /** Where the loader continues: the first batch after the checkpoint's step. */
  position: Schema.Struct({ epoch: Count, index: Count }),
  /** Sums of the current logging interval, so a resumed run logs the same interval means. */
  interval: Schema.Struct({ losses: Schema.Record(Schema.String, Schema.Number), images: Count }),
  /** Wall-clock seconds trained so far (reported, not part of the exact results). */
  elapsedSeconds: Schema.Number,
});
export type LoopState = typeof LoopState.Type;

export const LOOP_STATE_KEY = "train.loop";

/** Every state entry (parameters and optimizer moments) as float32 safetensors. */
export const stateTensors = (state: ReadonlyMap<string, Value>): Record<string, SafeTensor> =>
  Object.fromEntries(
    [...state].map((
      [name, v],
    ) => [name, { dtype: "F32", shape: v.dims as number[], data: v.data as Float32Array }]),
  );

/** A training state that went NaN or infinite although the step's loss was finite: not checkpointed. */
export class NonFiniteState extends Data.TaggedError("NonFiniteState")<{
  readonly step: number;
  readonly tensor: string;
  /** e.g. "NaN (3 of 256 values)". */
  readonly values: string;
}> {
  override get message(): string {
    return `step ${this.step}: state "${this.tensor}" holds ${this.values} after a finite loss; ` +
      "stopped, the last checkpoint is kept";
  }
}

/**
 * The NaN / ±Infinity values of a float array as words ("NaN (1 of 1024 values)", "NaN and Infinity
 * (5 of 16 values)"), or undefined when every value is finite. Integer arrays are always finite.
 */
export const nonFiniteValues = (data: ArrayLike<number | bigint>): string | undefined => {
  if (!(data instanceof Float32Array || data instanceof Float64Array)) return undefined;
  let nan = 0, pos = 0, neg = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v === 0) continue; // finite (NaN - NaN and ∞ - ∞ are NaN)
    if (Number.isNaN(v)) nan++;
    else if (v > 0) pos++;
    else neg++;
  }
  const kinds = [nan && "NaN", pos && "Infinity", neg && "-Infinity"].filter((k) => k) as string[];
  if (kinds.length === 0) return undefined;
  const words = kinds.length === 1 ? kinds[0] : `${kinds.slice(0, -1).join(", ")} and ${kinds.at(-1)}`;
  return `${words} (${nan + pos + neg} of ${data.length} values)`;
};

/**
 * The state as checkpoint tensors, refusing a state that holds NaN or ±Infinity: a checkpoint must be
 * something a run can continue from (the loss can still be finite when an update already went NaN).
 */
export const checkpointTensors = (
  state: ReadonlyMap<string, Value>,
  step: number,
): Effect.Effect<Record<string, SafeTensor>, NonFiniteState> =>
  Effect.gen(function* () {
    for (const [tensor, v] of state) {
      const values = nonFiniteValues(v.data);
      if (values) return yield* new NonFiniteState({ step, tensor, values });
    }
    return stateTensors(state);
  });

/** The safetensors dtype a state value of `dtype` is stored as. */
const STORED: Record<DType, SafeTensor["dtype"]> = {
  float32: "F32",
  float64: "F64",
  int64: "I64",
  int32: "I32",
  bool: "BOOL",
};

/** What a model expects of one tensor it reads from a checkpoint. */
export interface ExpectedTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/** At most `n` items, then "and K more". */
const firstFew = (items: readonly string[], n: number) =>
  items.length <= n ? items.join(", ") : `${items.slice(0, n).join(", ")} and ${items.length - n} more`;

/**
 * The checkpoint's values for every expected tensor, checked all at once: each must exist, with the
 * expected dtype and shape, and hold no NaN or ±Infinity. Fails with one line naming the file and every
 * problem (missing ones counted, the first few named). `noun` says what the expected tensors are
 * ("parameters" for inference, "state tensors" for a resumed run with its optimizer moments).
 */
export const checkpointValues = (
  ckpt: LoadedCheckpoint,
  expected: Iterable<ExpectedTensor>,
  noun: string,
): Effect.Effect<Map<string, Value>, CheckpointMismatch> => {
  const values = new Map<string, Value>();
  const missing: string[] = [], wrong: string[] = [], nonFinite: string[] = [];
  let total = 0;
  for (const { name, dtype, shape } of expected) {
    total++;
    const saved = Object.hasOwn(ckpt.tensors, name) ? ckpt.tensors[name] : undefined;
    if (!saved) missing.push(name);
    else if (saved.dtype !== STORED[dtype]) {
      wrong.push(`tensor "${name}" is ${saved.dtype}, the model expects ${STORED[dtype]}`);
    } else if (saved.shape.join() !== shape.join()) {
      wrong.push(`tensor "${name}" is [${saved.shape}], the model expects [${shape}]`);
    } else {
      const bad = nonFiniteValues(saved.data as ArrayLike<number>);
      if (bad) nonFinite.push(`tensor "${name}" holds ${bad}`);
      // The stored dtype is the expected one (checked above), so its array is a host array of that dtype.
      else values.set(name, value(dtype, saved.data as HostArray, saved.shape));
    }
  }
  const problems = [
    ...(missing.length
      ? [`lacks ${missing.length} of the model's ${total} ${noun}: ${firstFew(missing, 5)}`]
      : []),
    ...(wrong.length ? [firstFew(wrong, 5)] : []),
    ...(nonFinite.length ? [firstFew(nonFinite, 3)] : []),
  ];
  return problems.length
    ? Effect.fail(new CheckpointMismatch({ file: ckpt.file, reason: problems.join("; ") }))
    : Effect.succeed(values);
};

/**
 * Replaces every state entry with the checkpoint's tensor of the same name, checking all of them at
 * once (present, same dtype and shape, finite); returns the loop state the checkpoint recorded.
 */
export const restoreState = (state: Map<string, Value>, ckpt: LoadedCheckpoint) =>
  Effect.gen(function* () {
    const expected = [...state].map(([name, v]) => ({ name, dtype: v.type as DType, shape: v.dims }));
    const values = yield* checkpointValues(ckpt, expected, "state tensors");
    for (const [name, v] of values) state.set(name, v);
    return yield* decodeMetadataJson(ckpt.metadata, LOOP_STATE_KEY, LoopState, ckpt.file);
  });

/** The random stream key of dropout noise. */
export const NOISE_KEY = 0x4e4f4953; // "NOIS"

/**
 * Uniform [0, 1) noise for one dropout site at one step: a pure function of (seed, step, site).
 *
 * With a `shard` (data-parallel training, the site's first axis being the rank's share of the batch), the
 * rank's slice of the noise the one-process run draws for the whole global batch: rank r of N takes the
 * r-th of N equal parts of that tensor, so each image sees the dropout masks it would see in one process.
 */
export const noiseFeed = (
  seed: number,
  step: number,
  site: ValueSpec,
  shard?: { readonly rank: number; readonly ranks: number },
): Value => {
  const rng = random(seed, NOISE_KEY, step, nameKey(site.name));
  const data = new Float32Array(site.shape.reduce((a, b) => a * b, 1));
  // The draws of the ranks before this one are skipped: the stream is sequential.
  for (let i = 0, skip = (shard?.rank ?? 0) * data.length; i < skip; i++) rng.uniform();
  for (let i = 0; i < data.length; i++) data[i] = rng.uniform();
  return value("float32", data, site.shape);
};
