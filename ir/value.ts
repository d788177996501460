/**
 * A tensor value as plans pass it around: feeds, state, stage outputs.
 *
 * kappa's own type, so that building graphs and plans (layers/, interpret/, host stages) loads no
 * ONNX Runtime. Its fields are the ones ONNX Runtime's tensors have, so the runtime returns its tensors
 * as values unchanged and wraps a value made here (no copy) when it feeds one to a session. A value the
 * runtime left on a device (`location` other than "cpu") has no readable `data`.
 */
import type { DType, HostArray, Shape } from "./dtype.ts";

export interface Value {
  /** The element type (a DType for every value kappa makes). */
  readonly type: string;
  readonly dims: readonly number[];
  /** The elements, row-major; reading it throws for a value on a device. */
  readonly data: HostArray;
  /** "cpu" for a host value; a device value's location otherwise (e.g. "gpu-buffer"). */
  readonly location: string;
}

/** Wraps a host array as a value (no copy). */
export const value = (dtype: DType, data: HostArray, shape: Shape): Value => ({
  type: dtype,
  dims: [...shape],
  data,
  location: "cpu",
});

/** Whether a value lives on the host (its data readable) rather than on a device. */
export const onHost = (v: Value): boolean => v.location === "cpu";

/** Number of elements a value holds. */
export const valueSize = (v: Value): number => v.dims.reduce((a, b) => a * b, 1);
