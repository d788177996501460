/**
 * Folding an inference-mode BatchNorm into the convolution before it.
 *
 * BatchNorm at inference is a fixed per-channel affine map, y = γ·(x − mean)/√(var + ε) + β, so with
 * s = γ/√(var + ε) the pair conv → BatchNorm equals one convolution with weight w' = w·s (each output
 * channel's filter scaled by its s) and bias b' = β − mean·s (+ s·b when the conv had a bias b).
 */

export interface BatchNormStatistics {
  /** γ, the per-channel scale (PyTorch's `weight`). */
  readonly gamma: ArrayLike<number>;
  /** β, the per-channel shift (PyTorch's `bias`). */
  readonly beta: ArrayLike<number>;
  readonly mean: ArrayLike<number>;
  readonly variance: ArrayLike<number>;
}

export interface FoldedConv {
  /** Same layout as the input weight, output channel first. */
  readonly weight: Float32Array;
  /** One value per output channel. */
  readonly bias: Float32Array;
}

/** PyTorch's BatchNorm2d default ε, the one torchvision's MobileNetV2 uses. */
export const TORCH_BATCH_NORM_EPSILON = 1e-5;

/**
 * The convolution equal to `conv(·, weight) + bias` followed by BatchNorm with `bn`: weight laid out
 * output channel first ([out, ...]); `bias` defaults to none (zeros). Computed in float64, rounded once.
 */
export const foldBatchNorm = (
  weight: ArrayLike<number>,
  bn: BatchNormStatistics,
  { bias, epsilon = TORCH_BATCH_NORM_EPSILON }: { bias?: ArrayLike<number>; epsilon?: number } = {},
): FoldedConv => {
  const channels = bn.gamma.length;
  const perChannel = weight.length / channels;
  const folded = new Float32Array(weight.length);
  const foldedBias = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const s = bn.gamma[c] / Math.sqrt(bn.variance[c] + epsilon);
    for (let i = c * perChannel; i < (c + 1) * perChannel; i++) folded[i] = weight[i] * s;
    foldedBias[c] = bn.beta[c] + ((bias?.[c] ?? 0) - bn.mean[c]) * s;
  }
  return { weight: folded, bias: foldedBias };
};
