/**
 * Ours against the PyTorch peer, as the engine and perf suites both compare them: the equal work check
 * on the losses, and the table columns both suites share.
 */
import {
  type Column,
  fixed,
  formatLoss as loss,
  formatRelative as rel,
  formatSpread as spread,
  table,
} from "../figures/markdown.ts";
import { gflops, largestRelativeDifference, relativeDifference, type Summary } from "../figures/stats.ts";

/** Largest relative loss difference accepted before the first update (only summation order differs). */
export const FIRST_LOSS_TOLERANCE = 1e-5;
/** …and over the first checked steps, where float32 rounding differences compound through updates. */
export const STEPS_LOSS_TOLERANCE = 1e-4;

export interface EqualWork {
  readonly first: number;
  /** Largest relative difference over the first `checkSteps` losses. */
  readonly steps: number;
  readonly passed: boolean;
}

export const checkEqualWork = (
  ours: readonly number[],
  peer: readonly number[],
  checkSteps: number,
): EqualWork => {
  const first = relativeDifference(ours[0], peer[0]);
  const steps = largestRelativeDifference(ours.slice(0, checkSteps), peer.slice(0, checkSteps));
  const passed = ours.length >= checkSteps && peer.length >= checkSteps &&
    first <= FIRST_LOSS_TOLERANCE && steps <= STEPS_LOSS_TOLERANCE;
  return { first, steps, passed };
};

/**
 * The columns both step tables (engine, perf) share: each side's time, the ratio of medians and of
 * p10s, and each side's GFLOP/s for `flops` per step.
 */
export const sideBySideColumns = <R>(
  sides: (row: R) => { readonly ours: Summary; readonly peer: Summary },
  flops: number,
): Column<R>[] => [
  { header: "ours ms", cell: (r) => spread(sides(r).ours) },
  { header: "PyTorch ms", cell: (r) => spread(sides(r).peer) },
  { header: "ours / PyTorch", cell: (r) => fixed(sides(r).ours.median / sides(r).peer.median, 2) },
  { header: "ratio of p10s", cell: (r) => fixed(sides(r).ours.p10 / sides(r).peer.p10, 2) },
  { header: "ours GFLOP/s", cell: (r) => fixed(gflops(flops, sides(r).ours.median), 1) },
  { header: "PyTorch GFLOP/s", cell: (r) => fixed(gflops(flops, sides(r).peer.median), 1) },
];

/** Cores other processes kept busy while each side was measured. */
export const loadColumn = <R extends { readonly load: { readonly ours: number; readonly peer: number } }>(
  header = "other load, cores (ours / PyTorch)",
): Column<R> => ({ header, cell: (t) => `${fixed(t.load.ours, 2)} / ${fixed(t.load.peer, 2)}` });

/** The thread count, the first column of most tables. */
export const threadsColumn: Column<{ readonly threads: number }> = {
  header: "threads",
  cell: (t) => String(t.threads),
};

/**
 * The equal work check per thread count: the loss at step 1, at `checkSteps` (engine only) and at
 * `last`, ours beside PyTorch's, with the relative differences and the verdict.
 */
export const lossTable = <
  T extends {
    readonly threads: number;
    readonly ourLosses: readonly number[];
    readonly peerLosses: readonly number[];
  },
>(
  byThreads: readonly T[],
  checkSteps: number,
  last: number,
  atCheckSteps: boolean,
): string => {
  const k = checkSteps;
  const losses = (step: number): Column<T>[] => [
    { header: `loss step ${step}: ours`, cell: (t) => loss(t.ourLosses[step - 1]) },
    { header: "PyTorch", cell: (t) => loss(t.peerLosses[step - 1]) },
  ];
  const work = (t: T) => checkEqualWork(t.ourLosses, t.peerLosses, k);
  const maxDiff: Column<T> = { header: `max rel. diff, steps 1–${k}`, cell: (t) => rel(work(t).steps) };
  return table<T>([
    threadsColumn,
    ...losses(1),
    { header: "rel. diff", cell: (t) => rel(work(t).first) },
    ...(atCheckSteps ? [...losses(k), maxDiff] : [maxDiff]),
    { header: "check", cell: (t) => (work(t).passed ? "passed" : "FAILED") },
    { header: `step ${last}: ours`, cell: (t) => loss(t.ourLosses[last - 1]) },
    { header: "PyTorch", cell: (t) => loss(t.peerLosses[last - 1]) },
  ], byThreads);
};

/**
 * The peers tables' row order: for each of our thread counts, our row, then every peer side's row at
 * that thread count (sides measured at other counts are skipped).
 */
export const rowsByThreads = <
  O extends { readonly threads: number },
  S extends { readonly byThreads: readonly { readonly threads: number }[] },
  R,
>(
  ours: readonly O[],
  sides: readonly S[],
  oursRow: (o: O) => R,
  sideRow: (s: S, t: S["byThreads"][number], o: O) => R,
): R[] =>
  ours.flatMap((o) => [
    oursRow(o),
    ...sides.flatMap((s) => s.byThreads.filter((t) => t.threads === o.threads).map((t) => sideRow(s, t, o))),
  ]);
