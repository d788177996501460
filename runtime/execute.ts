/**
 * Running execution plans (`ir/plan.ts`) on ONNX Runtime.
 *
 * `execute` lowers each graph stage of a plan for the provider (`onnx/lower.ts`), opens its session and
 * initializes the plan's state; each run feeds the caller's inputs and the current state to the stages
 * in order and replaces each state entry `x` with the stage output `next:x` when one exists. Sessions
 * live in an Effect `Scope` and are released when it closes, on success, failure or interruption.
 *
 * On the CPU, ONNX Runtime copies every output and computes on the calling thread; state therefore goes
 * in and comes out as host arrays on each run. To keep that cheap, a state array that a run produced is
 * released as soon as a later run replaces it, and freed memory is kept for the next run's arrays
 * (`host_memory.ts`).
 *
 * On `webgpu`, state stays on the device: state set from the host is uploaded once (an Identity graph
 * with device outputs), `next:` outputs stay device buffers and are fed back on the next run, and only
 * the other outputs (losses, metrics, predictions) come to the host. `hostState` reads state back (an
 * Identity graph with host outputs: `getData()` on a device tensor aborts the process in
 * onnxruntime-node 1.30) for checkpoints and exports. A device value fed to a CPU session would read as
 * NaN, so the runtime refuses it.
 *
 * A host stage may declare state of its own, which it updates in place (LarvSeg's memory bank: a
 * graph would have to return the whole bank as a `next:` output to change a few rows of it, and ONNX
 * Runtime copies every output). Such state is checkpointed and restored like the rest but stays a
 * host array on every provider.
 */
import * as ort from "onnxruntime-node";
import { Data, Effect, Scope } from "effect";
import { type DType, type HostArray, shapeEquals } from "../ir/dtype.ts";
import { initialize } from "../ir/init.ts";
import { release, retainFreedMemory } from "./host_memory.ts";
import { type Lowered, toOnnx } from "../onnx/lower.ts";
import type { ValueSpec } from "../ir/live.ts";
import { Graph } from "../ir/graph.ts";
import { input } from "../ir/ops.ts";
import { type GraphStage, NEXT, type Plan, RuntimeError } from "../ir/plan.ts";
import { onHost, type Value, value } from "../ir/value.ts";
import { describeWebGpuFailure, diagnoseWebGpu } from "./webgpu_diagnosis.ts";
import { nchwcBlockSize } from "./nchwc.ts";

/** The version of the ONNX Runtime that runs plans (recorded in run folders). */
export const onnxRuntimeVersion = (): string => ort.env.versions.node ?? "unknown";

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
  /**
   * With `webgpu`: keep state on the device between runs (default true). Off, state goes through the
   * host on every run as on the CPU (for measuring what device-resident state saves).
   */
  readonly deviceState?: boolean;
  /**
   * On the CPU, run depthwise convolutions on ONNX Runtime's NCHWc kernels where it has them (default
   * true; `runtime/nchwc.ts`, `ir/primitives.ts` `runsOnNchwc`). Off: its generic grouped Conv, as an
   * exported model's graph has before ORT optimizes it (for measuring the difference).
   */
  readonly nchwc?: boolean;
}

const ORT_TYPE: Record<DType, ort.Tensor.Type> = {
  float32: "float32",
  float64: "float64",
  int64: "int64",
  int32: "int32",
  bool: "bool",
};

/** The ONNX Runtime tensor of a value: itself when ONNX Runtime made it, else a wrapper (no copy). */
export const toTensor = (v: Value): ort.Tensor =>
  v instanceof ort.Tensor ? v : new ort.Tensor(ORT_TYPE[v.type as DType], v.data as never, [...v.dims]);

/** Feeds for `session.run`: each value as ONNX Runtime's tensor (no copy). */
export const tensorFeeds = (feeds: Readonly<Record<string, Value>>): Record<string, ort.Tensor> =>
  Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toTensor(v)]));

/** Runs a session on values (all outputs, or `fetches`); its outputs are values, on the host or a device. */
export const runSession = (
  session: ort.InferenceSession,
  feeds: Readonly<Record<string, Value>>,
  fetches?: readonly string[],
): Promise<Record<string, Value>> =>
  (fetches ? session.run(tensorFeeds(feeds), [...fetches]) : session.run(tensorFeeds(feeds))) as Promise<
    Record<string, Value>
  >;

/** The ONNX model a graph stage runs on `provider` (with NCHWc depthwise convs where `nchwcBlock` is set). */
const loweringFor = (stage: GraphStage, provider: Provider, nchwcBlock?: number): Lowered =>
  toOnnx(stage.graph, {
    ...(stage.outputs ? { outputs: stage.outputs } : {}),
    name: stage.name,
    target: stage.target ?? (provider === "webgpu" ? "webgpu" : "cpu"),
    ...(nchwcBlock ? { nchwcBlock } : {}),
  });

/** Whether a stage has grouped convolutions, which NCHWc kernels may run (then the block size is asked). */
const hasGroupedConv = (stage: GraphStage): boolean =>
  stage.graph.nodes.some((n) => n.prim.op === "conv" && n.prim.group > 1);

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

const providerReason = async (provider: Provider, error: unknown): Promise<string> => {
  const text = String(error);
  if (provider === "webgpu" && /adapter/i.test(text)) return describeWebGpuFailure(await diagnoseWebGpu());
  return text.split("\n")[0];
};

/** Where ONNX Runtime leaves an output: on the host, or (webgpu) in a device buffer. */
export type OutputLocation = "cpu" | "gpu-buffer";

/** Creates an ONNX Runtime session for a serialized model, released when the scope closes. */
export const openSession = (
  name: string,
  bytes: Uint8Array,
  options: RuntimeOptions = {},
  outputLocations: Readonly<Record<string, OutputLocation>> = {},
): Effect.Effect<ort.InferenceSession, ProviderUnavailable | RuntimeError, Scope.Scope> => {
  const provider = options.provider ?? "cpu";
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider],
    graphOptimizationLevel: GRAPH_OPTIMIZATION[options.optimization ?? "all"],
    ...(options.threads ? { intraOpNumThreads: options.threads, interOpNumThreads: 1 } : {}),
    ...(options.profilePrefix ? { enableProfiling: true, profileFilePrefix: options.profilePrefix } : {}),
    ...(options.spinning === false ? { extra: { session: { intra_op: { allow_spinning: "0" } } } } : {}),
    ...(Object.keys(outputLocations).length ? { preferredOutputLocation: { ...outputLocations } } : {}),
  };
  return checkProvider(provider).pipe(
    Effect.andThen(
      Effect.acquireRelease(
        Effect.tryPromise({
          try: () => ort.InferenceSession.create(bytes, sessionOptions),
          catch: (e): unknown => e,
        }).pipe(
          Effect.catch((e): Effect.Effect<never, ProviderUnavailable | RuntimeError> =>
            provider !== "cpu" && /provider|vulkan|adapter|webgpu|cuda/i.test(String(e))
              ? Effect.promise(() => providerReason(provider, e)).pipe(
                Effect.flatMap((reason) => Effect.fail(new ProviderUnavailable({ provider, reason }))),
              )
              : Effect.fail(
                new RuntimeError({
                  stage: name,
                  reason: `cannot create session: ${String(e).split("\n")[0]}`,
                }),
              )
          ),
        ),
        (session) => Effect.promise(() => session.release()).pipe(Effect.ignore),
      ),
    ),
  );
};

/** Bytes copied between the host and the device by an executor's runs (zero on the CPU). */
export interface Transfers {
  toDevice: number;
  toHost: number;
}

/** A running plan: its sessions, and its state between runs. */
export interface Executor {
  readonly plan: Plan;
  readonly provider: Provider;
  /**
   * Current state by name (parameters, moments, buffers). With `webgpu` these are device values after
   * the first run: read them with `hostState`. Values set here from the host are uploaded by the next run.
   */
  readonly state: Map<string, Value>;
  /**
   * Runs every stage once; returns all values the stages produced (not the feeds or the state). With
   * `recycleStateMemory` (the default), the `next:` values it returns are released by the run after;
   * device values it replaces are always released.
   */
  readonly run: (feeds: Readonly<Record<string, Value>>) => Effect.Effect<Map<string, Value>, RuntimeError>;
  /** The state as host values (device values read back; host values as they are), e.g. to checkpoint. */
  readonly hostState: () => Effect.Effect<Map<string, Value>, RuntimeError>;
  /** Host↔device bytes so far (feeds, uploads, outputs and read-backs); the caller may reset them. */
  readonly transfers: Transfers;
}

/** The bytes of a host value. */
const bytesOf = (v: Value): number => (v.data as HostArray).byteLength;

/** A graph copying each value to an output named `prefix + name` (Identity nodes, no arithmetic). */
const identityGraph = (specs: readonly ValueSpec[], prefix: string): Graph => {
  const g = new Graph("copy");
  for (const s of specs) g.output(prefix + s.name, input(g, s.name, s.shape, s.dtype));
  return g;
};

const UPLOADED = "device:";
const READ_BACK = "host:";

/** Opens sessions for every graph stage of `plan` and initializes its state from `seed`. */
export const execute = (
  p: Plan,
  { seed = 0, recycleStateMemory = true, deviceState = true, nchwc = true, ...options }: RuntimeOptions & {
    seed?: number;
  } = {},
): Effect.Effect<Executor, ProviderUnavailable | RuntimeError, Scope.Scope> =>
  Effect.gen(function* () {
    if (recycleStateMemory) retainFreedMemory();
    const provider = options.provider ?? "cpu";
    const onDevice = provider === "webgpu" && deviceState;
    const scope = yield* Effect.scope;
    const sessions = new Map<string, ort.InferenceSession>();
    for (const stage of p.stages) {
      if (stage._tag === "GraphStage") {
        const locations: Record<string, OutputLocation> = {};
        if (onDevice) {
          for (const o of stage.results) {
            if (o.name.startsWith(NEXT)) locations[o.name] = "gpu-buffer";
          }
        }
        const block = provider === "cpu" && nchwc && hasGroupedConv(stage)
          ? yield* Effect.promise(nchwcBlockSize)
          : undefined;
        const bytes = loweringFor(stage, provider, block).bytes;
        sessions.set(stage.name, yield* openSession(stage.name, bytes, options, locations));
      }
    }
    const state = new Map<string, Value>(
      p.state.map((
        s,
      ) => [s.name, value(s.dtype, initialize(s.init, s.name, s.dtype, s.shape, seed), s.shape)]),
    );
    const specs = new Map(p.state.map((s) => [s.name, s]));
    // State that host stages update in place stays on the host whatever the provider.
    const hostOwned = new Set(
      p.stages.flatMap((s) => (s._tag === "HostStage" ? (s.state ?? []).map((v) => v.name) : [])),
    );
    const transfers: Transfers = { toDevice: 0, toHost: 0 };
    // State values this executor got from ORT: only these are released when replaced.
    const producedState = new WeakSet<Value>();
    const releaseValue = (v: Value) => {
      if (onHost(v)) {
        if (recycleStateMemory) release(v.data as HostArray);
      } else toTensor(v).dispose();
    };

    // Copy sessions (upload, read back), one per set of state names, opened on first use.
    const copySessions = new Map<string, ort.InferenceSession>();
    const copy = (names: readonly string[], prefix: string, location: OutputLocation) =>
      Effect.gen(function* () {
        const key = `${prefix}${names.join(",")}`;
        let session = copySessions.get(key);
        if (!session) {
          const g = identityGraph(names.map((n) => specs.get(n)!), prefix);
          const locations = Object.fromEntries(names.map((n) => [prefix + n, location]));
          session = yield* openSession(key, toOnnx(g).bytes, options, locations).pipe(
            Effect.provideService(Scope.Scope, scope),
            Effect.mapError((e) => new RuntimeError({ stage: "copy state", reason: e.message })),
          );
          copySessions.set(key, session);
        }
        const feeds = Object.fromEntries(names.map((n) => [n, state.get(n)!]));
        const out = yield* Effect.tryPromise({
          try: () => runSession(session, feeds),
          catch: (e) => new RuntimeError({ stage: "copy state", reason: String(e).split("\n")[0] }),
        });
        return new Map(names.map((n) => [n, out[prefix + n]]));
      });

    // State set from the host (the initial state, a checkpoint, a ranker) goes to the device once.
    const upload = Effect.gen(function* () {
      const names = [...state].filter(([n, v]) => onHost(v) && !hostOwned.has(n)).map(([n]) => n);
      if (names.length === 0) return;
      for (const n of names) transfers.toDevice += bytesOf(state.get(n)!);
      for (const [n, v] of yield* copy(names, UPLOADED, "gpu-buffer")) {
        state.set(n, v);
        producedState.add(v);
      }
    });

    const hostState = () =>
      Effect.gen(function* () {
        const names = [...state].filter(([, v]) => !onHost(v)).map(([n]) => n);
        const host = new Map(state);
        if (names.length === 0) return host;
        for (const [n, v] of yield* copy(names, READ_BACK, "cpu")) {
          host.set(n, v);
          transfers.toHost += bytesOf(v);
        }
        return host;
      });

    const run = (feeds: Readonly<Record<string, Value>>) =>
      Effect.gen(function* () {
        if (onDevice) yield* upload;
        const env = new Map<string, Value>(state);
        for (const [k, v] of Object.entries(feeds)) env.set(k, v);
        const produced = new Map<string, Value>();
        for (const stage of p.stages) {
          const outputs = stage._tag === "GraphStage"
            ? yield* runGraphStage(stage, sessions.get(stage.name)!, env, provider, transfers)
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
          if (!recycleStateMemory && onHost(v)) continue;
          producedState.add(v);
          if (replaced && replaced !== v && producedState.has(replaced)) releaseValue(replaced);
        }
        return produced;
      });
    return { plan: p, provider, state, run, hostState, transfers };
  });

const runGraphStage = (
  stage: GraphStage,
  session: ort.InferenceSession,
  env: ReadonlyMap<string, Value>,
  provider: Provider,
  transfers: Transfers,
) =>
  Effect.gen(function* () {
    const feeds: Record<string, Value> = {};
    for (const spec of stage.inputs) {
      const v = env.get(spec.name);
      if (!v) return yield* new RuntimeError({ stage: stage.name, reason: `missing input "${spec.name}"` });
      if (v.type !== ORT_TYPE[spec.dtype] || !shapeEquals(v.dims, spec.shape)) {
        return yield* new RuntimeError({
          stage: stage.name,
          reason: `input "${spec.name}" is ${v.type}[${v.dims}], expected ${spec.dtype}[${spec.shape}]`,
        });
      }
      if (!onHost(v) && provider !== "webgpu") {
        return yield* new RuntimeError({
          stage: stage.name,
          reason: `input "${spec.name}" is a ${v.location} value on the webgpu device, which a ${provider} ` +
            `session cannot read; read it back first (Executor.hostState)`,
        });
      }
      if (provider !== "cpu" && onHost(v)) transfers.toDevice += bytesOf(v);
      feeds[spec.name] = v;
    }
    const out = yield* Effect.tryPromise({
      try: () => runSession(session, feeds),
      catch: (e) => new RuntimeError({ stage: stage.name, reason: String(e).split("\n")[0] }),
    });
    if (provider !== "cpu") {
      for (const v of Object.values(out)) if (onHost(v)) transfers.toHost += bytesOf(v);
    }
    return out;
  });
