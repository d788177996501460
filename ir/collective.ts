/**
 * Collective operations between the processes of one data-parallel run, as an interface: what host stages
 * and the training loop need of MPI (or of any other transport), without loading it. `runtime/mpi.ts`
 * implements it over Open MPI through FFI; tests may implement it in process.
 *
 * Every operation is collective: all ranks call it, in the same order, with buffers of the same size.
 * Ranks are numbered 0..size-1; rank r holds the r-th shard of each global batch, so "rank order" is the
 * order of the samples in the one-process batch.
 */
import type { Effect } from "effect";
import type { RuntimeError } from "./plan.ts";

export interface Collective {
  readonly rank: number;
  readonly size: number;
  /** Sums `data` over the ranks, in place (MPI_Allreduce with MPI_IN_PLACE, MPI_SUM on float32). */
  allReduceSum(data: Float32Array): Effect.Effect<void, RuntimeError>;
  /** Every rank's `data` concatenated in rank order (MPI_Allgather of float32). */
  allGather(data: Float32Array): Effect.Effect<Float32Array, RuntimeError>;
  /** Overwrites `data` with rank `root`'s bytes on every rank (MPI_Bcast). */
  broadcast(data: Uint8Array, root: number): Effect.Effect<void, RuntimeError>;
  /**
   * Waits until every rank has arrived, without keeping a core busy meanwhile (a rank that waits for
   * rank 0's evaluation polls every few milliseconds and sleeps in between).
   */
  barrier(): Effect.Effect<void, RuntimeError>;
}
