/**
 * The training order: one seeded shuffle per epoch, cut into batches, as a lazy sequence of sample tasks
 * that can start at any (epoch, index).
 */
import { random } from "../core/random.ts";
import type { Position } from "./batch.ts";

/** Key of the per-epoch shuffle streams: `random(seed, SHUFFLE, epoch)`. */
export const SHUFFLE = 0x53485546; // "SHUF"

/** The permutation of `0..n-1` that epoch `epoch` visits (Fisher–Yates on `random(seed, SHUFFLE, epoch)`). */
export const epochOrder = (n: number, seed: number, epoch: number): Int32Array => {
  const rng = random(seed, SHUFFLE, epoch);
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
};

/** One sample's place in the training order and in its batch. */
export interface Slot {
  readonly epoch: number;
  /** Position of the sample within the epoch's order. */
  readonly index: number;
  /** The dataset sample at that position. */
  readonly sample: number;
  /** The batch the sample belongs to: its first index and its size. */
  readonly batch: Position;
  readonly batchSize: number;
}

/** Samples per epoch that make it into batches: all of them, or whole batches only with `dropLast`. */
export const epochLength = (n: number, batchSize: number, dropLast: boolean): number =>
  dropLast ? n - (n % batchSize) : n;

/**
 * The training order from `start` on, forever: epoch after epoch, each in its own shuffled order, cut into
 * batches of `batchSize` (the last one shorter unless `dropLast`). Starting at (e, i) yields exactly what
 * a run from (0, 0) yields from that point on.
 */
export function* trainingSlots(
  n: number,
  batchSize: number,
  dropLast: boolean,
  seed: number,
  start: Position,
): Generator<Slot> {
  const end = epochLength(n, batchSize, dropLast);
  for (let epoch = start.epoch;; epoch++) {
    const order = epochOrder(n, seed, epoch);
    for (let first = epoch === start.epoch ? start.index : 0; first < end; first += batchSize) {
      const size = Math.min(batchSize, end - first);
      for (let k = 0; k < size; k++) {
        yield {
          epoch,
          index: first + k,
          sample: order[first + k],
          batch: { epoch, index: first },
          batchSize: size,
        };
      }
    }
  }
}
