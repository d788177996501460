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

/**
 * Replaces every state entry with the checkpoint's tensor of the same name, checking that each exists
 * with the shape the model expects; returns the loop state the checkpoint recorded.
 */
export const restoreState = (state: Map<string, Value>, ckpt: LoadedCheckpoint) =>
  Effect.gen(function* () {
    for (const [name, current] of state) {
      const saved = ckpt.tensors[name];
      if (!saved) {
        return yield* new CheckpointMismatch({ file: ckpt.file, reason: `has no tensor "${name}"` });
      }
      if (saved.shape.join() !== current.dims.join()) {
        return yield* new CheckpointMismatch({
          file: ckpt.file,
          reason: `tensor "${name}" is [${saved.shape}], the model expects [${current.dims}]`,
        });
      }
      state.set(name, value("float32", saved.data as Float32Array, saved.shape));
    }
    return yield* decodeMetadataJson(ckpt.metadata, LOOP_STATE_KEY, LoopState, ckpt.file);
  });

/** The random stream key of dropout noise. */
const NOISE_KEY = 0x4e4f4953; // "NOIS"

/** Uniform [0, 1) noise for one dropout site at one step: a pure function of (seed, step, site). */
export const noiseFeed = (seed: number, step: number, site: ValueSpec): Value => {
  const rng = random(seed, NOISE_KEY, step, nameKey(site.name));
  const data = new Float32Array(site.shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng.uniform();
  return value("float32", data, site.shape);
};
