/**
 * MPI through Deno's FFI: the `Collective` (ir/collective.ts) of a data-parallel run over Open MPI's
 * `libmpi.so.40`, and how a process learns that a launcher (mpirun, srun --mpi=pmix) started it as one
 * rank of several.
 *
 * Measured facts this rests on (DESIGN.md, "Beyond one machine"): `MPI_COMM_WORLD`, `MPI_FLOAT`, `MPI_SUM`
 * are the addresses of Open MPI's globals `ompi_mpi_comm_world`, `ompi_mpi_float`, `ompi_mpi_op_sum` (an FFI
 * static of type "pointer" yields the address); `MPI_IN_PLACE` is the pointer 1; a symbol declared
 * `nonblocking: true` runs on a thread of Deno's pool and returns a Promise, so an all-reduce does not block
 * the event loop — which needs `MPI_Init_thread` at `MPI_THREAD_MULTIPLE` (3), since the calls come from
 * pool threads. Other MPI implementations name those globals differently: this binding is Open MPI's.
 *
 * The library is `libmpi.so.40` unless `KAPPA_MPI_LIBRARY` names another file (tests name a missing one to
 * see the error). A library that does not load is `MpiUnavailable`, one line.
 */
import { Data, Effect, type Scope } from "effect";
import type { Collective } from "../ir/collective.ts";
import { RuntimeError } from "../ir/plan.ts";

/** The environment variable that overrides the MPI library's file name. */
export const MPI_LIBRARY_VARIABLE = "KAPPA_MPI_LIBRARY";
export const DEFAULT_MPI_LIBRARY = "libmpi.so.40";

/** The MPI library cannot be loaded or initialized; `reason` says what went wrong. */
export class MpiUnavailable extends Data.TaggedError("MpiUnavailable")<{
  readonly library: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `MPI: cannot use ${this.library}: ${this.reason}`;
  }
}

/** How a launcher started this process: rank `rank` of `size`, `localSize` of them on this machine. */
export interface Launch {
  readonly launcher: "mpirun" | "srun";
  readonly rank: number;
  readonly size: number;
  readonly localSize: number;
}

/** A launcher started several processes that cannot form an MPI world (srun without an MPI plugin). */
export class LaunchError
  extends Data.TaggedError("LaunchError")<{ readonly reason: string; readonly rank: number }> {
  override get message(): string {
    return this.reason;
  }
}

/** An environment variable, or undefined where this process may not read it (the spec-only tasks). */
const readEnv = (name: string): string | undefined => {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
};

const intOf = (s: string | undefined): number | undefined => {
  const n = s === undefined ? NaN : parseInt(s, 10);
  return Number.isInteger(n) ? n : undefined;
};

/**
 * The launch this process is part of, from the launcher's environment variables: Open MPI's mpirun sets
 * `OMPI_COMM_WORLD_{RANK,SIZE,LOCAL_SIZE}`; Slurm's srun sets `SLURM_PROCID`, `SLURM_STEP_NUM_TASKS`,
 * `SLURM_STEP_TASKS_PER_NODE` and, with `--mpi=pmix`, `PMIX_RANK`. Undefined for a process started alone
 * (a batch script's own shell included: it has no step task count). srun with several tasks but no PMIx
 * would start independent copies of one run: refused.
 */
export const detectLaunch = (
  env: (name: string) => string | undefined = readEnv,
): Launch | LaunchError | undefined => {
  const ompiSize = intOf(env("OMPI_COMM_WORLD_SIZE"));
  if (ompiSize !== undefined) {
    return {
      launcher: "mpirun",
      rank: intOf(env("OMPI_COMM_WORLD_RANK")) ?? 0,
      size: ompiSize,
      localSize: intOf(env("OMPI_COMM_WORLD_LOCAL_SIZE")) ?? ompiSize,
    };
  }
  const steps = intOf(env("SLURM_STEP_NUM_TASKS"));
  if (steps === undefined) return undefined;
  const rank = intOf(env("PMIX_RANK")) ?? intOf(env("SLURM_PROCID")) ?? 0;
  if (env("PMIX_RANK") === undefined) {
    return steps > 1
      ? new LaunchError({
        rank,
        reason: `srun started ${steps} tasks without an MPI plugin (this is task ${rank}); ` +
          `they would train one run each: use srun --mpi=pmix -n ${steps}, or start one task`,
      })
      : undefined;
  }
  return {
    launcher: "srun",
    rank,
    size: steps,
    localSize: intOf(env("SLURM_STEP_TASKS_PER_NODE")) ?? steps,
  };
};

const SYMBOLS = {
  MPI_Init_thread: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
  MPI_Initialized: { parameters: ["buffer"], result: "i32" },
  MPI_Finalized: { parameters: ["buffer"], result: "i32" },
  MPI_Comm_rank: { parameters: ["pointer", "buffer"], result: "i32" },
  MPI_Comm_size: { parameters: ["pointer", "buffer"], result: "i32" },
  MPI_Allreduce: {
    parameters: ["pointer", "buffer", "i32", "pointer", "pointer", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  MPI_Allgather: {
    parameters: ["buffer", "i32", "pointer", "buffer", "i32", "pointer", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  MPI_Bcast: { parameters: ["buffer", "i32", "pointer", "i32", "pointer"], result: "i32", nonblocking: true },
  MPI_Ibarrier: { parameters: ["pointer", "buffer"], result: "i32" },
  MPI_Test: { parameters: ["buffer", "buffer", "pointer"], result: "i32" },
  MPI_Abort: { parameters: ["pointer", "i32"], result: "i32" },
  MPI_Finalize: { parameters: [], result: "i32" },
  ompi_mpi_comm_world: { type: "pointer" },
  ompi_mpi_float: { type: "pointer" },
  ompi_mpi_byte: { type: "pointer" },
  ompi_mpi_op_sum: { type: "pointer" },
} as const;

type MpiLibrary = Deno.DynamicLibrary<typeof SYMBOLS>;

/** MPI_THREAD_MULTIPLE: calls may come from any thread (Deno runs nonblocking FFI calls on a pool). */
const THREAD_MULTIPLE = 3;
/** MPI_IN_PLACE in Open MPI's mpi.h: `(void *) 1` (made when a world starts: it needs FFI permission). */
const inPlace = () => Deno.UnsafePointer.create(1n);

/** The process's one MPI library (MPI may be initialized once per process). */
let loaded: { readonly library: string; readonly lib: MpiLibrary } | undefined;

/** Loads the MPI library (once per process), or says in one line why it cannot. */
export const loadMpi = (): Effect.Effect<MpiLibrary, MpiUnavailable> =>
  Effect.suspend(() => {
    const library = Deno.env.get(MPI_LIBRARY_VARIABLE) || DEFAULT_MPI_LIBRARY;
    if (loaded?.library === library) return Effect.succeed(loaded.lib);
    return Effect.try({
      try: () => {
        const lib = Deno.dlopen(library, SYMBOLS);
        loaded = { library, lib };
        return lib;
      },
      catch: (e) =>
        new MpiUnavailable({
          library,
          // Deno says "Could not open library: Could not open library: <dlerror>".
          reason: `${
            String(e instanceof Error ? e.message : e).split("\n")[0].replace(
              /^(Could not open library: )+/,
              "",
            )
          } (install Open MPI: ` +
            `apt install openmpi-bin libopenmpi-dev, or name the library in ${MPI_LIBRARY_VARIABLE})`,
        }),
    });
  });

/** An initialized MPI world: the Collective of MPI_COMM_WORLD, plus what ends it. */
export interface MpiWorld extends Collective {
  readonly launch: Launch;
  /** Ends every rank of the job at once (MPI_Abort): for a rank that failed while others wait on it. */
  abort(code: number): never;
}

/** The world of this process while it is initialized (the CLI aborts it when a rank fails). */
let current: MpiWorld | undefined;

/** The initialized MPI world of this process, if any. */
export const currentWorld = (): MpiWorld | undefined => current;

const check = (what: string, rc: number): Effect.Effect<void, RuntimeError> =>
  rc === 0 ? Effect.void : Effect.fail(new RuntimeError({ stage: what, reason: `MPI error code ${rc}` }));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Initializes MPI for `launch` (MPI_Init_thread at MPI_THREAD_MULTIPLE) and finalizes it when the scope
 * closes. Fails with `MpiUnavailable` when the library does not load or the world is not the size the
 * launcher's environment announced.
 */
export const mpiWorld = (launch: Launch): Effect.Effect<MpiWorld, MpiUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const lib = yield* loadMpi();
    const s = lib.symbols;
    const library = loaded!.library;
    const fail = (reason: string) => Effect.fail(new MpiUnavailable({ library, reason }));
    const flag = new Int32Array(1);
    s.MPI_Finalized(flag);
    if (flag[0]) return yield* fail("MPI was already finalized in this process");
    s.MPI_Initialized(flag);
    if (!flag[0]) {
      const provided = new Int32Array(1);
      const rc = s.MPI_Init_thread(null, null, THREAD_MULTIPLE, provided);
      if (rc !== 0) return yield* fail(`MPI_Init_thread returned ${rc}`);
      if (provided[0] < THREAD_MULTIPLE) {
        return yield* fail(`MPI_THREAD_MULTIPLE is not provided (level ${provided[0]})`);
      }
    }
    const comm = s.ompi_mpi_comm_world, float = s.ompi_mpi_float, byte = s.ompi_mpi_byte;
    const IN_PLACE = inPlace();
    const rank = new Int32Array(1), size = new Int32Array(1);
    s.MPI_Comm_rank(comm, rank);
    s.MPI_Comm_size(comm, size);
    if (size[0] !== launch.size || rank[0] !== launch.rank) {
      return yield* fail(
        `the launcher announced rank ${launch.rank} of ${launch.size}, MPI says rank ${rank[0]} of ` +
          `${size[0]} (is ${library} the library mpirun/srun belong to?)`,
      );
    }
    const call = (what: string, f: () => Promise<number>) =>
      Effect.flatMap(Effect.promise(f), (rc) => check(what, rc));
    const world: MpiWorld = {
      launch,
      rank: rank[0],
      size: size[0],
      allReduceSum: (data) =>
        call(
          "MPI_Allreduce",
          () => s.MPI_Allreduce(IN_PLACE, data, data.length, float, s.ompi_mpi_op_sum, comm),
        ),
      allGather: (data) =>
        Effect.suspend(() => {
          const out = new Float32Array(data.length * size[0]);
          return Effect.as(
            call(
              "MPI_Allgather",
              () => s.MPI_Allgather(data, data.length, float, out, data.length, float, comm),
            ),
            out,
          );
        }),
      broadcast: (data, root) => call("MPI_Bcast", () => s.MPI_Bcast(data, data.length, byte, root, comm)),
      barrier: () =>
        Effect.gen(function* () {
          const request = new BigUint64Array(1), done = new Int32Array(1);
          yield* check("MPI_Ibarrier", s.MPI_Ibarrier(comm, request));
          for (;;) {
            yield* check("MPI_Test", s.MPI_Test(request, done, null));
            if (done[0]) return;
            yield* Effect.promise(() => sleep(5));
          }
        }),
      abort: (code) => {
        s.MPI_Abort(comm, code);
        Deno.exit(code);
      },
    };
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        current = undefined;
        s.MPI_Finalize();
      })
    );
    current = world;
    return world;
  });
