/**
 * Parameter initializers: data describing how a variable's first value is drawn, evaluated on the host.
 *
 * Each variable draws from its own stream `random(seed, hash(name))`, so its initial value depends only on
 * the seed and its name — not on the order in which layers were declared or on which other layers exist.
 */
import { allocate, type DType, type HostArray, type Shape, sizeOf } from "./dtype.ts";
import { random } from "../core/random.ts";

export type Init =
  | { readonly _tag: "zeros" }
  | { readonly _tag: "ones" }
  | { readonly _tag: "constant"; readonly value: number }
  | { readonly _tag: "normal"; readonly std: number; readonly mean?: number }
  /** Normal with std `std`, resampled outside ±2 std (the intent of timm's `trunc_normal_(std=.02)`). */
  | { readonly _tag: "truncNormal"; readonly std: number }
  | { readonly _tag: "uniform"; readonly low: number; readonly high: number };

export const zeros: Init = { _tag: "zeros" };
export const ones: Init = { _tag: "ones" };
export const constantInit = (value: number): Init => ({ _tag: "constant", value });
export const normal = (std: number, mean = 0): Init => ({ _tag: "normal", std, mean });
export const truncNormal = (std: number): Init => ({ _tag: "truncNormal", std });
export const uniform = (low: number, high: number): Init => ({ _tag: "uniform", low, high });
/** Glorot/Xavier uniform for a weight with the given fan-in and fan-out. */
export const xavierUniform = (fanIn: number, fanOut: number): Init => {
  const a = Math.sqrt(6 / (fanIn + fanOut));
  return uniform(-a, a);
};

/** FNV-1a hash of a variable name: the key of its random stream. */
export const nameKey = (name: string): number => {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
};

/** The initial value of variable `name` under `seed`. */
export const initialize = (init: Init, name: string, dtype: DType, shape: Shape, seed: number): HostArray => {
  const n = sizeOf(shape);
  const out = allocate(dtype, n);
  // Zeros need no float64 staging array: for LarvSeg's 2.08 GiB bank that array alone was 4.2 GiB.
  if (init._tag === "zeros") return out;
  const values = new Float64Array(n);
  const rng = random(seed, nameKey(name));
  switch (init._tag) {
    case "ones":
      values.fill(1);
      break;
    case "constant":
      values.fill(init.value);
      break;
    case "normal":
      for (let i = 0; i < n; i++) values[i] = (init.mean ?? 0) + init.std * rng.normal();
      break;
    case "truncNormal":
      for (let i = 0; i < n; i++) {
        let z = rng.normal();
        while (Math.abs(z) > 2) z = rng.normal();
        values[i] = init.std * z;
      }
      break;
    case "uniform":
      for (let i = 0; i < n; i++) values[i] = init.low + (init.high - init.low) * rng.uniform();
      break;
  }
  if (out instanceof BigInt64Array) values.forEach((v, i) => (out[i] = BigInt(Math.round(v))));
  else out.set(values);
  return out;
};
