/**
 * Element types and static shapes of IR tensors, and the host arrays that hold their values.
 */

export type DType = "float32" | "float64" | "int64" | "int32" | "bool";
export type Shape = readonly number[];

export interface TensorType {
  readonly dtype: DType;
  readonly shape: Shape;
}

/** The JavaScript array that holds a tensor's values on the host (ONNX Runtime's convention). */
export type HostArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

export const isFloat = (dtype: DType): boolean => dtype === "float32" || dtype === "float64";

/** Number of elements of a shape (1 for a scalar). */
export const sizeOf = (shape: Shape): number => shape.reduce((a, b) => a * b, 1);

export const shapeEquals = (a: Shape, b: Shape): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/** `f32[2,3]`, the compact form used by the printer and in error messages. */
export const formatType = ({ dtype, shape }: TensorType): string => `${SHORT[dtype]}[${shape.join(",")}]`;

const SHORT: Record<DType, string> = {
  float32: "f32",
  float64: "f64",
  int64: "i64",
  int32: "i32",
  bool: "bool",
};

/** ONNX TensorProto.DataType codes. */
export const ONNX_DTYPE: Record<DType, number> = { float32: 1, int32: 6, int64: 7, bool: 9, float64: 11 };

/** A zero-filled host array for `dtype` with `n` elements. */
export const allocate = (dtype: DType, n: number): HostArray => {
  switch (dtype) {
    case "float32":
      return new Float32Array(n);
    case "float64":
      return new Float64Array(n);
    case "int64":
      return new BigInt64Array(n);
    case "int32":
      return new Int32Array(n);
    case "bool":
      return new Uint8Array(n);
  }
};

/** A host array for `dtype` holding `values` (numbers are converted, e.g. to BigInt for int64). */
export const hostArray = (dtype: DType, values: ArrayLike<number>): HostArray => {
  const out = allocate(dtype, values.length);
  if (out instanceof BigInt64Array) { for (let i = 0; i < values.length; i++) out[i] = BigInt(values[i]); }
  else (out as Float64Array).set(values);
  return out;
};

/** The dtype a host array holds. */
export const dtypeOfArray = (a: HostArray): DType =>
  a instanceof Float32Array
    ? "float32"
    : a instanceof Float64Array
    ? "float64"
    : a instanceof BigInt64Array
    ? "int64"
    : a instanceof Int32Array
    ? "int32"
    : "bool";

/**
 * ONNX broadcasting (numpy rules): align shapes at the right; each pair of dims must be equal or one of them 1.
 * Returns undefined when the shapes do not broadcast.
 */
export const broadcastShapes = (...shapes: Shape[]): number[] | undefined => {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const k = s.length - rank + i;
      const e = k < 0 ? 1 : s[k];
      if (e === 1) continue;
      if (d !== 1 && d !== e) return undefined;
      d = e;
    }
    out.push(d);
  }
  return out;
};

/** Normalizes a possibly negative axis for a tensor of rank `rank`; undefined when out of range. */
export const normalizeAxis = (axis: number, rank: number): number | undefined => {
  const a = axis < 0 ? axis + rank : axis;
  return a >= 0 && a < rank ? a : undefined;
};
