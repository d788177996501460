/**
 * Adaptive average pooling of a token grid, as a matmul with a constant averaging matrix.
 *
 * Window i along an axis of length n pooled to p covers [floor(i·n/p), ceil((i+1)·n/p)), exactly as
 * PyTorch's `AdaptiveAvgPool2d`, so it also works when n is not a multiple of p (or smaller than p).
 */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";

const windows = (n: number, p: number) =>
  Array.from({ length: p }, (_, i) => [Math.floor((i * n) / p), Math.ceil(((i + 1) * n) / p)] as const);

/** The [p·q, h·w] matrix averaging an h×w grid into p×q cells (row-major). */
export const adaptivePoolMatrix = (h: number, w: number, p: number, q: number): Float64Array => {
  const m = new Float64Array(p * q * h * w);
  windows(h, p).forEach(([y0, y1], i) =>
    windows(w, q).forEach(([x0, x1], j) => {
      const weight = 1 / ((y1 - y0) * (x1 - x0));
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[(i * q + j) * h * w + y * w + x] = weight;
    })
  );
  return m;
};

/** tokens [b, h·w, d] on an h×w grid → [b, p·p, d]. */
export const adaptiveAvgPool = (tokens: Tensor, [h, w]: readonly [number, number], p: number): Tensor =>
  o.matmul(o.constant(tokens.graph, adaptivePoolMatrix(h, w, p, p), [p * p, h * w], tokens.dtype), tokens);
