/** Summaries of timing samples and comparisons of losses: pure functions, unit-tested. */

export interface Summary {
  readonly median: number;
  readonly p10: number;
  readonly p90: number;
  readonly runs: number;
}

/** The `q`-quantile (0…1) of ascending `sorted`, interpolating linearly between neighbours. */
export const quantile = (sorted: readonly number[], q: number): number => {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
};

/** Median and 10th/90th percentiles: the median resists the occasional slow run a mean would absorb. */
export const summarize = (samples: readonly number[]): Summary => {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    median: quantile(sorted, 0.5),
    p10: quantile(sorted, 0.1),
    p90: quantile(sorted, 0.9),
    runs: sorted.length,
  };
};

/** |a − b| / |b|, with b the reference (b = 0 compares absolutely). */
export const relativeDifference = (a: number, b: number): number =>
  b === 0 ? Math.abs(a) : Math.abs(a - b) / Math.abs(b);

/** The largest relative difference between two loss curves over their common steps. */
export const largestRelativeDifference = (ours: readonly number[], peer: readonly number[]): number =>
  Math.max(0, ...ours.slice(0, peer.length).map((v, i) => relativeDifference(v, peer[i])));

/** Floating-point operations per second, in GFLOP/s, for `flops` done in `ms` milliseconds. */
export const gflops = (flops: number, ms: number): number => flops / (ms * 1e6);

/** The arithmetic mean (NaN when `xs` is empty). */
export const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The sample standard deviation (n − 1), 0 below two values: the spread over seeds. */
export const std = (xs: readonly number[]): number =>
  xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1));
