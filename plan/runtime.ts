/**
 * Execution plans on ONNX Runtime.
 *
 * A plan is a sequence of stages — ONNX graphs and host functions (e.g. Hungarian matching between a
 * cost graph and a training graph) — plus named state (parameters, optimizer moments, buffers). Running
 * a plan feeds the caller's inputs and the current state to the stages in order and replaces each state
 * entry `x` with the stage output `next:x` when one exists. Sessions live in an Effect `Scope` and are
 * released when it closes, on success, failure or interruption.
 *
 * ONNX Runtime copies every output and computes on the calling thread; state therefore goes in and
 * comes out as host arrays on each run. To keep that cheap, a state array that a run produced is
 * released as soon as a later run replaces it, and freed memory is kept for the next run's arrays
 * (`host_memory.ts`).
 */
import * as ort from "onnxruntime-node";
import { Data, Effect, type Scope } from "effect";
import { type DType, type HostArray, type Shape, shapeEquals, sizeOf } from "./dtype.ts";
import type { Graph } from "./graph.ts";
import { type Init, initialize } from "./init.ts";
import { release, retainFreedMemory } from "./host_memory.ts";
import { type Lowered, type LowerOptions, toOnnx, type ValueSpec } from "./onnx.ts";

export type Provider = "cpu" | "webgpu" | "cuda";
export const PROVIDERS: readonly Provider[] = ["cpu", "webgpu", "cuda"];

/** The requested execution provider cannot run here; `reason` says what is missing. */
export class ProviderUnavailable extends Data.TaggedError("ProviderUnavailable")<{
  readonly provider: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `execution provider "${this.provider}" is unavailable: ${this.reason}`;
  }
}

/** ONNX Runtime failed to create a session or to run one, or a feed is missing or malformed. */
export class RuntimeError
  extends Data.TaggedError("RuntimeError")<{ readonly stage: string; readonly reason: string }> {
  override get message(): string {
    return `${this.stage}: ${this.reason}`;
  }
}

export interface RuntimeOptions {
  readonly provider?: Provider;
  /** Intra-op threads (ONNX Runtime default: one per core). */
  readonly threads?: number;
  readonly optimization?: "disabled" | "basic" | "extended" | "all";
  /** Write ONNX Runtime's profile (chrome trace JSON) with this file prefix. */
  readonly profilePrefix?: string;
  /**
   * Whether idle intra-op threads spin while waiting for work (ONNX Runtime's default, true): spinning
   * saves waking sleeping threads. When other processes want the cores, spinning threads compete with
   * them and each parallel section waits for a thread that lost its core: with spinning off, a 2-thread
   * training step of bench perf's model took ~0.9 s instead of ~1.4 s beside another process's training.
   */
  readonly spinning?: boolean;
  /**
   * Recycle the host memory of state between runs (default true): a state value that a run produced
   * is released (its array detached, length 0) when a later run replaces it, and malloc keeps freed
   * memory for the next run's outputs. Copy a state value to keep it past the next run. Values set from
   * outside (the initial state, a checkpoint) are never released.
   */
  readonly recycleStateMemory?: boolean;
}

/** A host tensor as ONNX Runtime takes and returns it. */
export type Value = ort.Tensor;

const ORT_TYPE: Record<DType, ort.Tensor.Type> = {
  float32: "float32",
  float64: "float64",
  int64: "int64",
  int32: "int32",
  bool: "bool",
};

/** Wraps a host array as a runtime value (no copy). */
export const value = (dtype: DType, data: HostArray, shape: Shape): Value =>
  new ort.Tensor(ORT_TYPE[dtype], data as never, [...shape]);

export interface GraphStage {
  readonly _tag: "GraphStage";
  readonly name: string;
  readonly lowered: Lowered;
}

export interface HostStage {
  readonly _tag: "HostStage";
  readonly name: string;
  /** The values `run` returns (so later graph stages do not expect them as feeds). */
  readonly outputs: readonly string[];
  /** Reads values computed so far (feeds, state, earlier outputs) and returns new named values. */
  readonly run: (env: ReadonlyMap<string, Value>) => Effect.Effect<Record<string, Value>, RuntimeError>;
}

export type Stage = GraphStage | HostStage;

export interface StateSpec extends ValueSpec {
  readonly init: Init;
}

export interface Plan {
  readonly name: string;
  readonly stages: readonly Stage[];
  /** Variables the stages read; their values persist across runs. */
  readonly state: readonly StateSpec[];
  /** Values the caller feeds on each run. */
  readonly feeds: readonly ValueSpec[];
}

/** The prefix of a graph output that replaces a state entry after a run. */
export const NEXT = "next:";

/** One graph stage computing the named outputs of `g` (default: all of them). */
export const graphStage = (g: Graph, options: LowerOptions & { name?: string } = {}): GraphStage => ({
  _tag: "GraphStage",
  name: options.name ?? g.name,
  lowered: toOnnx(g, options),
});

/** A plan made of stages; state and feeds are derived from the graph stages' inputs. */
export const plan = (name: string, g: Graph, stages: readonly Stage[]): Plan => {
  const state = new Map<string, StateSpec>();
  const feeds = new Map<string, ValueSpec>();
  const produced = new Set<string>();
  for (const stage of stages) {
    if (stage._tag !== "GraphStage") {
      for (const name of stage.outputs) produced.add(name);
      continue;
    }
    for (const v of stage.lowered.inputs) {
      const t = g.lookup(v.name);
      const prim = t && g.producer(t).prim;
      if (prim?.op === "variable") state.set(v.name, { ...v, init: prim.init });
      else if (!produced.has(v.name)) feeds.set(v.name, v);
    }
    for (const v of stage.lowered.outputs) produced.add(v.name);
  }
  return { name, stages, state: [...state.values()], feeds: [...feeds.values()] };
};

const GRAPH_OPTIMIZATION = {
  disabled: "disabled",
  basic: "basic",
  extended: "extended",
  all: "all",
} as const;

/** Checks that `provider` can run on this machine, without silently falling back to another. */
export const checkProvider = (provider: Provider): Effect.Effect<void, ProviderUnavailable> => {
  if (provider === "cpu") return Effect.void;
  const backend = ort.listSupportedBackends().find((b) => b.name === provider);
  if (!backend || !backend.bundled) {
    return Effect.fail(
      new ProviderUnavailable({
        provider,
        reason: provider === "cuda"
          ? "onnxruntime-node@1.30.0 does not bundle the CUDA provider (its libraries are downloaded at install " +
            "time, which needs network access this setup does not have); use --provider cpu or webgpu"
          : `onnxruntime-node@1.30.0 has no "${provider}" backend`,
      }),
    );
  }
  return Effect.void;
};

const providerReason = (provider: Provider, error: unknown): string => {
  const text = String(error);
  if (provider === "webgpu" && /vulkan|adapter|webgpu_context/i.test(text)) {
    return "no WebGPU adapter could be created (the WebGPU provider needs a GPU and a Vulkan loader, " +
      "libvulkan.so.1; none was found)";
  }
  return text.split("\n")[0];
};

/** Creates an ONNX Runtime session for a serialized model, released when the scope closes. */
export const openSession = (
  name: string,
  bytes: Uint8Array,
  options: RuntimeOptions = {},
): Effect.Effect<ort.InferenceSession, ProviderUnavailable | RuntimeError, Scope.Scope> => {
  const provider = options.provider ?? "cpu";
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider],
    graphOptimizationLevel: GRAPH_OPTIMIZATION[options.optimization ?? "all"],
    ...(options.threads ? { intraOpNumThreads: options.threads, interOpNumThreads: 1 } : {}),
    ...(options.profilePrefix ? { enableProfiling: true, profileFilePrefix: options.profilePrefix } : {}),
    ...(options.spinning === false ? { extra: { session: { intra_op: { allow_spinning: "0" } } } } : {}),
  };
  return checkProvider(provider).pipe(
    Effect.andThen(
      Effect.acquireRelease(
        Effect.tryPromise({
          try: () => ort.InferenceSession.create(bytes, sessionOptions),
          catch: (e): ProviderUnavailable | RuntimeError =>
            provider !== "cpu" && /provider|vulkan|adapter|webgpu|cuda/i.test(String(e))
              ? new ProviderUnavailable({ provider, reason: providerReason(provider, e) })
              : new RuntimeError({
                stage: name,
                reason: `cannot create session: ${String(e).split("\n")[0]}`,
              }),
        }),
        (session) => Effect.promise(() => session.release()).pipe(Effect.ignore),
      ),
    ),
  );
};

/** A running plan: its sessions, and its state between runs. */
export interface Executor {
  readonly plan: Plan;
  /** Current state by name (parameters, moments, buffers). */
  readonly state: Map<string, Value>;
  /**
   * Runs every stage once; returns all values the stages produced (not the feeds or the state). With
   * `recycleStateMemory` (the default), the `next:` values it returns are released by the run after.
   */
  readonly run: (feeds: Readonly<Record<string, Value>>) => Effect.Effect<Map<string, Value>, RuntimeError>;
}

/** Opens sessions for every graph stage of `plan` and initializes its state from `seed`. */
export const execute = (
  p: Plan,
  { seed = 0, recycleStateMemory = true, ...options }: RuntimeOptions & { seed?: number } = {},
): Effect.Effect<Executor, ProviderUnavailable | RuntimeError, Scope.Scope> =>
  Effect.gen(function* () {
    if (recycleStateMemory) retainFreedMemory();
    const sessions = new Map<string, ort.InferenceSession>();
    for (const stage of p.stages) {
      if (stage._tag === "GraphStage") {
        sessions.set(stage.name, yield* openSession(stage.name, stage.lowered.bytes, options));
      }
    }
    const state = new Map<string, Value>(
      p.state.map((
        s,
      ) => [s.name, value(s.dtype, initialize(s.init, s.name, s.dtype, s.shape, seed), s.shape)]),
    );
    // State values this executor got from ORT: only these are released when replaced.
    const producedState = new WeakSet<Value>();
    const run = (feeds: Readonly<Record<string, Value>>) =>
      Effect.gen(function* () {
        const env = new Map<string, Value>(state);
        for (const [k, v] of Object.entries(feeds)) env.set(k, v);
        const produced = new Map<string, Value>();
        for (const stage of p.stages) {
          const outputs = stage._tag === "GraphStage"
            ? yield* runGraphStage(stage, sessions.get(stage.name)!, env)
            : yield* stage.run(env);
          for (const [k, v] of Object.entries(outputs)) {
            env.set(k, v);
            produced.set(k, v);
          }
        }
        for (const [k, v] of produced) {
          if (!k.startsWith(NEXT)) continue;
          const name = k.slice(NEXT.length);
          const replaced = state.get(name);
          state.set(name, v);
          if (!recycleStateMemory) continue;
          producedState.add(v);
          if (replaced && replaced !== v && producedState.has(replaced)) release(replaced.data as HostArray);
        }
        return produced;
      });
    return { plan: p, state, run };
  });

const runGraphStage = (stage: GraphStage, session: ort.InferenceSession, env: ReadonlyMap<string, Value>) =>
  Effect.gen(function* () {
    const feeds: Record<string, Value> = {};
    for (const spec of stage.lowered.inputs) {
      const v = env.get(spec.name);
      if (!v) return yield* new RuntimeError({ stage: stage.name, reason: `missing input "${spec.name}"` });
      if (v.type !== ORT_TYPE[spec.dtype] || !shapeEquals(v.dims, spec.shape)) {
        return yield* new RuntimeError({
          stage: stage.name,
          reason: `input "${spec.name}" is ${v.type}[${v.dims}], expected ${spec.dtype}[${spec.shape}]`,
        });
      }
      feeds[spec.name] = v;
    }
    return yield* Effect.tryPromise({
      try: () => session.run(feeds) as Promise<Record<string, Value>>,
      catch: (e) => new RuntimeError({ stage: stage.name, reason: String(e).split("\n")[0] }),
    });
  });

/** Number of elements a value holds. */
export const valueSize = (v: Value): number => sizeOf(v.dims);
