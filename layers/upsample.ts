/**
 * Bilinear resampling of channel-last maps [b, h, w, c] as two matmuls with constant interpolation
 * matrices (half-pixel centres, PyTorch's `align_corners=False`: the values of `o.resize` on the NCHW
 * transpose, up to float rounding).
 *
 * Why: ψ's logits come out channel-last ([b, h·w, κ]), and the loss and the per-pixel argmax reduce
 * over the class axis. ONNX Runtime's LogSoftmax and ArgMax over axis 1 of an NCHW map are strided and
 * far slower than over the last axis, and its Resize is slower than these matmuls: on one core,
 * [4, 50, 16, 16] → Resize → LogSoftmax over axis 1 took ~195 ms, the channel-last matmuls and a
 * LogSoftmax over the last axis ~18 ms. A matmul's gradient is two matmuls, so no new rule is needed.
 */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { linearInterpolationMatrix } from "../ir/primitives.ts";

/**
 * Resamples x [b, h, w, c] to [b, H, W, c] with `rows` [H, h] and `cols` [W, w] (row-major): output
 * (i, j) = Σ rows[i, y] · cols[j, x] · x[y, x]. Columns first, so that the large output is written by
 * one matmul per image with a wide right-hand side.
 */
export const interpolateChannelsLast = (
  x: Tensor,
  rows: { readonly matrix: Float64Array; readonly size: number },
  cols: { readonly matrix: Float64Array; readonly size: number },
): Tensor => {
  const [b, h, w, c] = x.shape;
  const g = x.graph;
  const alongWidth = o.matmul(o.constant(g, cols.matrix, [cols.size, w], x.dtype), x); // [b, h, W, c]
  const flat = o.reshape(alongWidth, [b, h, cols.size * c]);
  const both = o.matmul(o.constant(g, rows.matrix, [rows.size, h], x.dtype), flat); // [b, H, W·c]
  return o.reshape(both, [b, rows.size, cols.size, c]);
};

/** Bilinear resize of x [b, h, w, c] to [b, height, width, c]. */
export const resizeChannelsLast = (x: Tensor, height: number, width: number): Tensor =>
  interpolateChannelsLast(
    x,
    { matrix: linearInterpolationMatrix(height, x.shape[1]), size: height },
    { matrix: linearInterpolationMatrix(width, x.shape[2]), size: width },
  );

/**
 * The [output, from] matrix of one axis of: bilinear upsampling from `from` to `size` samples, keeping
 * the first `valid`, then resampling those to `output` (a padded image's valid region at the size the
 * caller wants). Composed in float64, so the two resamplings cost one matmul.
 */
export const regionInterpolationMatrix = (
  from: number,
  size: number,
  valid: number,
  output: number,
): Float64Array => {
  const up = linearInterpolationMatrix(size, from).subarray(0, valid * from); // [valid, from]
  if (output === valid) return up;
  const down = linearInterpolationMatrix(output, valid); // [output, valid]
  const out = new Float64Array(output * from);
  for (let i = 0; i < output; i++) {
    for (let k = 0; k < valid; k++) {
      const weight = down[i * valid + k];
      if (weight === 0) continue;
      for (let j = 0; j < from; j++) out[i * from + j] += weight * up[k * from + j];
    }
  }
  return out;
};
