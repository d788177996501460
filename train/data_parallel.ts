/**
 * What the training loop needs to run as one rank of a data-parallel run (N processes, one run): the
 * options, the checks of the rank count, the agreement after setup, and the state every rank starts from.
 *
 * - The experiment's `train.batchSize` is the global batch; each rank trains on its shard of it, a batch
 *   of batchSize / N (the loader's `shard`). The run folder, its spec hash and its checkpoints are the same
 *   whatever N: a run resumes with another rank count.
 * - Rank 0 alone writes the run folder (lock, meta, metrics, checkpoints, evaluations, report); the other
 *   ranks write nothing.
 * - After setup the ranks agree (one all-reduce of "I failed" flags) before anything collective happens,
 *   so that a rank that could not start stops every rank cleanly, each saying nothing but its own error.
 * - Then rank 0's state (parameters, moments, buffers — from the checkpoint it restored, or the initial
 *   ones) and loop position go to every rank (`MPI_Bcast`): the ranks start equal, and only rank 0 needs
 *   the run folder.
 */
import { Data, Effect } from "effect";
import type { Collective } from "../ir/collective.ts";
import type { HostArray } from "../ir/dtype.ts";
import { type Value, value } from "../ir/value.ts";
import type { ReduceStats } from "../host/all_reduce.ts";

export interface DataParallelTraining {
  /** The ranks of the run (MPI_COMM_WORLD, `runtime/mpi.ts`). */
  readonly collective: Collective;
  /** The largest gradient bucket in bytes (default: one bucket). */
  readonly bucketBytes?: number;
  /** Where the all-reduce stages add their calls, seconds and bytes (default: a fresh record). */
  readonly stats?: ReduceStats;
}

/** The global batch does not split into equal shards over the ranks. */
export class RankCountMismatch extends Data.TaggedError("RankCountMismatch")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason;
  }
}

/**
 * The experiment cannot train on several ranks: its model kind has no data-parallel stages
 * (`Training.dataParallelStages`), or it freezes its backbone (a feature cache is read by one loader).
 */
export class DataParallelUnsupported
  extends Data.TaggedError("DataParallelUnsupported")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason;
  }
}

/**
 * Checks that the experiment may train on `ranks` ranks beyond its batch splitting: a frozen backbone
 * trains in one process (its cached features are read by one loader, not sharded).
 */
export const checkDataParallel = (
  e: { readonly train: { readonly frozenBackbone?: unknown } },
  ranks: number,
): Effect.Effect<void, DataParallelUnsupported> =>
  e.train.frozenBackbone === undefined ? Effect.void : Effect.fail(
    new DataParallelUnsupported({
      reason:
        `train.frozenBackbone: a frozen backbone trains in one process; leave it out to train on ${ranks} ranks`,
    }),
  );

/** This rank failed while setting up a data-parallel run; `failed` lists every rank that did. */
export class RankFailure extends Data.TaggedError("RankFailure")<{
  readonly rank: number;
  readonly size: number;
  readonly failed: readonly number[];
  readonly error: unknown;
}> {
  override get message(): string {
    const e = this.error as { message?: string };
    return `rank ${this.rank}: ${e?.message ?? String(this.error)}`;
  }
}

/** Other ranks failed while setting up; this one stops with them (they said why). */
export class PeerRanksFailed
  extends Data.TaggedError("PeerRanksFailed")<{ readonly failed: readonly number[] }> {
  override get message(): string {
    return `rank${this.failed.length > 1 ? "s" : ""} ${
      this.failed.join(", ")
    } failed to start; stopped with ${this.failed.length > 1 ? "them" : "it"}`;
  }
}

/** Checks that `batchSize` splits into `ranks` equal shards. */
export const checkRankCount = (batchSize: number, ranks: number): Effect.Effect<number, RankCountMismatch> =>
  batchSize % ranks === 0 ? Effect.succeed(batchSize / ranks) : Effect.fail(
    new RankCountMismatch({
      reason:
        `train.batchSize: ${batchSize} images do not split into ${ranks} equal shards (one per rank); ` +
        `use a batch size divisible by ${ranks}, or ${divisors(batchSize).join(", ")} ranks`,
    }),
  );

const divisors = (n: number) => Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);

/**
 * Runs a rank's setup and agrees with the other ranks on its outcome: every rank succeeds, or every rank
 * fails — the failed ones with `RankFailure` (their own error and who else failed), the others with
 * `PeerRanksFailed`. Nothing collective may run inside `setup`.
 */
export const agreeOnSetup = <A, E, R>(
  c: Collective,
  setup: Effect.Effect<A, E, R>,
): Effect.Effect<A, RankFailure | PeerRanksFailed, R> =>
  Effect.gen(function* () {
    const outcome = yield* Effect.result(setup);
    const flags = new Float32Array(c.size);
    if (outcome._tag === "Failure") flags[c.rank] = 1;
    yield* Effect.orDie(c.allReduceSum(flags));
    const failed = [...flags.keys()].filter((r) => flags[r] > 0);
    if (outcome._tag === "Failure") {
      return yield* new RankFailure({ rank: c.rank, size: c.size, failed, error: outcome.failure });
    }
    if (failed.length > 0) return yield* new PeerRanksFailed({ failed });
    return outcome.success;
  });

/** Broadcasts are cut into pieces of at most this many bytes (MPI counts are 32-bit). */
const PIECE = 1 << 30;

const bytesOf = (data: HostArray) => new Uint8Array(data.buffer, data.byteOffset, data.byteLength);

const broadcastBytes = (c: Collective, bytes: Uint8Array) =>
  Effect.gen(function* () {
    for (let at = 0; at < bytes.length; at += PIECE) {
      yield* c.broadcast(bytes.subarray(at, Math.min(at + PIECE, bytes.length)), 0);
    }
  });

/**
 * Makes every rank's `state` and `loop` rank 0's: the state values in the order of `names` (the plan's
 * state, the same on every rank), then `loop` as JSON. Host values only (nothing has run yet).
 */
export const shareRankZeroState = <L>(
  c: Collective,
  names: readonly string[],
  state: Map<string, Value>,
  loop: L,
) =>
  Effect.gen(function* () {
    for (const name of names) {
      const v = state.get(name)!;
      if (c.rank === 0) {
        yield* broadcastBytes(c, bytesOf(v.data));
        continue;
      }
      const data = new (v.data.constructor as new (n: number) => HostArray)(v.data.length);
      yield* broadcastBytes(c, bytesOf(data));
      state.set(name, value(v.type as never, data, v.dims));
    }
    const text = new TextEncoder().encode(c.rank === 0 ? JSON.stringify(loop) : "");
    const length = new Uint8Array(new Float64Array([text.length]).buffer);
    yield* c.broadcast(length, 0);
    const received = new Uint8Array(new Float64Array(length.buffer)[0]);
    if (c.rank === 0) received.set(text);
    yield* broadcastBytes(c, received);
    return (c.rank === 0 ? loop : JSON.parse(new TextDecoder().decode(received))) as L;
  });
