/**
 * LarvSeg's memory bank as two runtime host stages around the training graph (DESIGN.md, "LarvSeg
 * facts"): `read` before it pairs each image with its labelled classes and gathers those classes' bank
 * means c_l and readiness; `write` after it stores the graph's new rows (the top-Kp detached p̂ of each
 * (image, labelled class)) into the bank and advances the pointers and fill counters.
 *
 * Why host stages and not `next:` outputs of the training graph (the issue asks for the bank to be
 * "updated inside the training graph"; what it wants is the behaviour, and this keeps it): ONNX Runtime
 * copies every graph output, so a bank that is graph state leaves the graph whole on every step, and
 * updating a few rows of a graph value means building a bank-sized result. At K = 21,841 classes, M = Kp
 * = 20, d = 64 that is 2.08 GiB per step for a write of b·P rows. Here the graph sees b·P·d class means
 * and returns b·P·Kp·d new rows; the bank is host state that the stages update in place, O(touched rows)
 * per step whatever K is. The bank is still plan state (`model.attentive.bank`, `.bankPointer`,
 * `.bankFill`: checkpointed, restored bitwise), and the inference graph never sees it.
 *
 * The class means are gathered on the host rather than by a Gather over the bank fed as a graph input:
 * on the CPU provider the input is not copied (a Gather of 16 rows from a 1.9 GiB input took 3.9 ms), so
 * both are cheap there, but on `webgpu` a host bank fed to the graph would be uploaded on every step.
 */
import { Effect } from "effect";
import { zeros } from "../ir/init.ts";
import { type HostStage, RuntimeError, type StateSpec } from "../ir/plan.ts";
import type { Collective } from "../ir/collective.ts";
import { onHost, type Value, value } from "../ir/value.ts";

/** The sizes the stages work with: batch b, pairs per image P, classes K, slots M, pixels Kp, width d. */
export interface BankDims {
  readonly batch: number;
  readonly pairs: number;
  readonly classes: number;
  readonly slots: number;
  readonly pixels: number;
  readonly d: number;
}

/** Names the stages read and write, all under the attentive classifier's scope. */
export interface BankNames {
  /** f32[b, K] multi-hot image-level labels (a feed of the training graph). */
  readonly labels: string;
  /** State: f32[K, M, Kp, d] bank, f32[K] pointer (next slot), f32[K] fill (writes, saturating at M). */
  readonly bank: string;
  readonly pointer: string;
  readonly fill: string;
  /** `read`'s outputs: int64[b, P] paired classes, f32[b, P, d] their bank means, f32[b, P] 1 = bank full. */
  readonly pairs: string;
  readonly centroids: string;
  readonly ready: string;
  /** The graph's output `write` stores: f32[b, P, Kp, d]. */
  readonly rows: string;
}

/** Labels at or above this count as present (they are 0/1). */
const PRESENT = 0.5;

/**
 * The classes paired with each image, int64[b, P]: its labelled classes by ascending id, then (as
 * padding, weighted 0 downstream) the lowest unlabelled ids — what ONNX TopK over the 0/1 labels gives,
 * ties going to the lower index.
 */
export const pairClasses = (labels: ArrayLike<number>, batch: number, classes: number, pairs: number) => {
  const out = new BigInt64Array(batch * pairs);
  for (let b = 0; b < batch; b++) {
    let j = 0;
    for (const present of [true, false]) {
      for (let c = 0; c < classes && j < pairs; c++) {
        if ((labels[b * classes + c] >= PRESENT) === present) out[b * pairs + j++] = BigInt(c);
      }
    }
  }
  return out;
};

/**
 * Per pair: c_l, the mean of the M·Kp entries of class l's bank ([b, P, d], summed in float64), and
 * whether l's bank is ready (every slot written once: fill = M).
 */
export const readBank = (
  bank: Float32Array,
  fill: Float32Array,
  pairs: BigInt64Array,
  { slots, pixels, d }: BankDims,
) => {
  const entries = slots * pixels;
  const centroids = new Float32Array(pairs.length * d);
  const ready = new Float32Array(pairs.length);
  const sum = new Float64Array(d);
  pairs.forEach((id, i) => {
    const l = Number(id);
    ready[i] = fill[l] >= slots ? 1 : 0;
    sum.fill(0);
    const base = l * entries * d;
    for (let e = 0; e < entries; e++) {
      for (let j = 0; j < d; j++) sum[j] += bank[base + e * d + j];
    }
    for (let j = 0; j < d; j++) centroids[i * d + j] = sum[j] / entries;
  });
  return { centroids, ready };
};

/**
 * Writes image by image, in batch order: each labelled pair's Kp rows go to slot pointer_l of class l,
 * whose pointer then advances mod M and whose fill counter grows up to M. A class written by several
 * images of the batch takes consecutive slots; with more than M such images the later ones overwrite the
 * earlier ones, as writing one image at a time would. In place; O(b·P·Kp·d).
 */
export const writeBank = (
  state: { readonly bank: Float32Array; readonly pointer: Float32Array; readonly fill: Float32Array },
  rows: Float32Array,
  pairs: BigInt64Array,
  labels: ArrayLike<number>,
  { batch, pairs: p, classes, slots, pixels, d }: BankDims,
): void => {
  const row = pixels * d;
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < p; j++) {
      const i = b * p + j, l = Number(pairs[i]);
      if (labels[b * classes + l] < PRESENT) continue;
      const slot = state.pointer[l];
      state.bank.set(rows.subarray(i * row, (i + 1) * row), (l * slots + slot) * row);
      state.pointer[l] = (slot + 1) % slots;
      state.fill[l] = Math.min(state.fill[l] + 1, slots);
    }
  }
};

/** The bank's state entries: zeros at the start (pointer 0, nothing filled). */
export const bankState = (names: BankNames, { classes, slots, pixels, d }: BankDims): StateSpec[] => [
  { name: names.bank, dtype: "float32", shape: [classes, slots, pixels, d], init: zeros },
  { name: names.pointer, dtype: "float32", shape: [classes], init: zeros },
  { name: names.fill, dtype: "float32", shape: [classes], init: zeros },
];

/** A host float32 value of `shape` from `env`, or a one-line reason it is not one. */
const hostFloats = (env: ReadonlyMap<string, Value>, name: string, shape: readonly number[]) => {
  const v = env.get(name);
  if (!v) return `missing input "${name}"`;
  if (v.type !== "float32" || v.dims.join() !== shape.join()) {
    return `"${name}" is ${v.type}[${v.dims}], expected float32[${shape}]`;
  }
  if (!onHost(v)) return `"${name}" is a ${v.location} value; the bank stages read host arrays`;
  return v.data as Float32Array;
};

/**
 * The `read` and `write` host stages of one bank (the bank's state is declared by `read`).
 *
 * With a `collective` of several ranks (data-parallel training), `write` first gathers every rank's rows
 * and image-level labels in rank order — the order of the images in the one-process batch — and writes
 * the whole global batch, so that every rank's bank stays the bank one process would have.
 */
export const bankStages = (
  names: BankNames,
  dims: BankDims,
  collective?: Collective,
): { read: HostStage; write: HostStage } => {
  const { batch, pairs, classes, slots, pixels, d } = dims;
  const fail = (stage: string, reason: string) => Effect.fail(new RuntimeError({ stage, reason }));
  const inputs = (env: ReadonlyMap<string, Value>) => {
    const found = {
      labels: hostFloats(env, names.labels, [batch, classes]),
      bank: hostFloats(env, names.bank, [classes, slots, pixels, d]),
      pointer: hostFloats(env, names.pointer, [classes]),
      fill: hostFloats(env, names.fill, [classes]),
    };
    const bad = Object.values(found).find((v) => typeof v === "string");
    return typeof bad === "string" ? bad : found as { [k in keyof typeof found]: Float32Array };
  };
  const read: HostStage = {
    _tag: "HostStage",
    name: "bank read",
    outputs: [names.pairs, names.centroids, names.ready],
    state: bankState(names, dims),
    run: (env) => {
      const found = inputs(env);
      if (typeof found === "string") return fail("bank read", found);
      const ids = pairClasses(found.labels, batch, classes, pairs);
      const { centroids, ready } = readBank(found.bank, found.fill, ids, dims);
      return Effect.succeed({
        [names.pairs]: value("int64", ids, [batch, pairs]),
        [names.centroids]: value("float32", centroids, [batch, pairs, d]),
        [names.ready]: value("float32", ready, [batch, pairs]),
      });
    },
  };
  const write: HostStage = {
    _tag: "HostStage",
    name: "bank write",
    outputs: [],
    run: (env) => {
      const found = inputs(env);
      if (typeof found === "string") return fail("bank write", found);
      const rows = hostFloats(env, names.rows, [batch, pairs, pixels, d]);
      if (typeof rows === "string") return fail("bank write", rows);
      const ids = env.get(names.pairs);
      if (!ids || ids.type !== "int64") return fail("bank write", `missing input "${names.pairs}"`);
      if (!collective || collective.size === 1) {
        writeBank(found, rows, ids.data as BigInt64Array, found.labels, dims);
        return Effect.succeed({});
      }
      return Effect.gen(function* () {
        const all = { batch: batch * collective.size };
        const allRows = yield* collective.allGather(rows);
        const allLabels = yield* collective.allGather(found.labels);
        const allIds = pairClasses(allLabels, all.batch, classes, pairs);
        writeBank(found, allRows, allIds, allLabels, { ...dims, ...all });
        return {};
      });
    },
  };
  return { read, write };
};
