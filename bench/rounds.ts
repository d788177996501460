/**
 * Pooling the rounds: the measurements alternate between the sides in rounds, and the figures of one
 * thread count are the pooled samples of all its rounds. Pure, unit-tested.
 */
import type { MatmulFigures } from "./measure.ts";
import type { PeerResult } from "./peer.ts";
import { averageLoad, type Load } from "./load.ts";
import type { ThreadFigures } from "./report.ts";
import { summarize } from "../figures/stats.ts";

/** What one round measured at one thread count. */
export interface Round {
  readonly threads: number;
  readonly matmul: readonly MatmulFigures[];
  /** Milliseconds per timed training step, and the loss before every step (warm-up included). */
  readonly ourMs: readonly number[];
  readonly ourLosses: readonly number[];
  readonly ourFaultsPerStep: number;
  /** Milliseconds per run of the state round trip graph. */
  readonly stateMs: readonly number[];
  readonly peer: PeerResult;
  readonly load: { readonly ours: Load; readonly peer: Load };
}

/** Per size, the entry with the highest `score`: a peak is what the CPU can do, at its least disturbed. */
const bestPerSize = <A extends { readonly n: number }>(xs: readonly A[], score: (a: A) => number): A[] =>
  [...new Set(xs.map((x) => x.n))].sort((a, b) => a - b).map((n) =>
    xs.filter((x) => x.n === n).reduce((a, b) => (score(b) > score(a) ? b : a))
  );

/** The figures of one thread count from its rounds (losses from the first: every round starts alike). */
export const poolRounds = (threads: number, rounds: readonly Round[]): ThreadFigures => {
  const mine = rounds.filter((r) => r.threads === threads);
  const first = mine[0];
  const peerMatmul = mine.flatMap((r) => r.peer.matmul.map((m) => ({ n: m.n, ms: summarize(m.ms) })));
  return {
    threads,
    matmul: bestPerSize(mine.flatMap((r) => r.matmul), (m) => m.gflops),
    peerMatmul: bestPerSize(peerMatmul, (m) => -m.ms.median),
    ours: summarize(mine.flatMap((r) => r.ourMs)),
    peer: summarize(mine.flatMap((r) => r.peer.stepMs)),
    ourLosses: first?.ourLosses ?? [],
    peerLosses: first?.peer.losses ?? [],
    stateMs: summarize(mine.flatMap((r) => r.stateMs)),
    faultsPerStep: mine.reduce((s, r) => s + r.ourFaultsPerStep, 0) / mine.length,
    openblasThreads: first?.peer.blas.openblasThreads ?? null,
    torchThreads: first?.peer.torchThreads ?? NaN,
    load: {
      ours: averageLoad(mine.map((r) => r.load.ours)),
      peer: averageLoad(mine.map((r) => r.load.peer)),
    },
  };
};
