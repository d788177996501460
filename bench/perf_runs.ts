/**
 * The measurements of `deno task bench perf` on our side: training steps, one-image inference through
 * the exported model, the profiled step in a child process, and the PyTorch peer's answer.
 */
import { Effect } from "effect";
import { fileURLToPath } from "node:url";
import { execute, openSession, type Plan, type Value, value } from "../mod.ts";
import { type HostArray, tensorFeeds } from "../profiling.ts";
import { type Repeats, timeRuns } from "./measure.ts";
import {
  type InferenceProfile,
  medianRunTimes,
  readTrace,
  runsOfTrace,
  type StepProfile,
} from "./profile.ts";
import { type PeerIdentity, peerScript, runPeerScript } from "./peer.ts";
import type { InferenceOutputs } from "./perf_report.ts";

/** The loss before each step (warm-up steps first) and the time of each timed step. */
export interface TrainingRun {
  readonly ms: number[];
  readonly losses: number[];
}

/** Trains `p` from its seeded initial state on the same feeds every step, timing each step. */
export const timeTraining = (
  p: Plan,
  feeds: Readonly<Record<string, Value>>,
  threads: number,
  repeats: Repeats,
  { seed = 0, spinning, state }: {
    seed?: number;
    spinning?: boolean;
    /** Initial values that replace the seeded ones (a pretrained backbone). */
    state?: ReadonlyMap<string, Value>;
  } = {},
): Promise<TrainingRun> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(p, { seed, threads, optimization: "all", spinning });
    for (const [name, v] of state ?? []) ex.state.set(name, v);
    const { ms, results } = yield* timeRuns(ex.run(feeds), repeats);
    return { ms, losses: results.map((out) => out.get("loss")!.data[0] as number) };
  })));

/** The initial state of `p` under `seed` (what a training run starts from). */
export const initialState = (p: Plan, seed = 0): Promise<Map<string, Value>> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(p, { seed });
    return new Map(ex.state);
  })));

const numbers = (v: Value | undefined): number[] => Array.from((v?.data ?? []) as HostArray, Number);

/**
 * Times one-image inference with the exported model `bytes` in a fresh ONNX Runtime session; returns
 * the times and the outputs of the last run.
 */
export const timeInference = (
  bytes: Uint8Array,
  image: Float32Array,
  size: number,
  threads: number,
  repeats: Repeats,
  spinning?: boolean,
): Promise<{ ms: number[]; outputs: InferenceOutputs }> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const session = yield* openSession("inference", bytes, { threads, optimization: "all", spinning });
    const feeds = tensorFeeds({ images: value("float32", image, [1, 3, size, size]) });
    const { ms, results } = yield* timeRuns(
      Effect.promise(() => session.run(feeds) as Promise<Record<string, Value>>),
      repeats,
    );
    const last = results[results.length - 1];
    return {
      ms,
      outputs: {
        scores: numbers(last.scores),
        selected: numbers(last.selected),
        logits: numbers(last.logits),
        classes: numbers(last.classes),
      },
    };
  })));

/** ORT's profile of one-image inference with the exported model, in its own session. */
export const profileInference = async (
  bytes: Uint8Array,
  image: Float32Array,
  size: number,
  threads: number,
  repeats: Repeats,
): Promise<InferenceProfile> => {
  const dir = await Deno.makeTempDir({ prefix: "kappa-profile-" });
  try {
    await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const session = yield* openSession("inference", bytes, {
        threads,
        optimization: "all",
        profilePrefix: `${dir}/infer`,
      });
      const feeds = tensorFeeds({ images: value("float32", image, [1, 3, size, size]) });
      yield* timeRuns(Effect.promise(() => session.run(feeds)), repeats);
    }))); // the trace is written when the session is released
    return medianRunTimes(runsOfTrace(await readTrace(dir), repeats.runs));
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
};

const OVERHEAD_CHILD = fileURLToPath(new URL("./overhead_child.ts", import.meta.url));

/**
 * ORT's profile of the perf model's step in a fresh Deno process, with or without the runtime's
 * host-memory recycling (which changes the process's allocator settings for good).
 */
export const profileInChild = async (
  threads: number,
  recycle: boolean,
  repeats: Repeats,
): Promise<StepProfile> => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", OVERHEAD_CHILD, JSON.stringify({ threads, recycle, ...repeats })],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`overhead child failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
  }
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!) as StepProfile;
};

/** What bench/peer/segmenter.py answers. */
export interface SegmenterPeerResult extends PeerIdentity {
  readonly losses: readonly number[];
  readonly stepMs: readonly number[];
  readonly inferMs: readonly number[];
  readonly outputs: InferenceOutputs;
}

/** Runs the PyTorch peer: training steps and one-image inference from the parameters in `inputs`. */
export const runSegmenterPeer = (
  python: string,
  inputs: string,
  threads: number,
  train: Repeats,
  infer: Repeats,
): SegmenterPeerResult => {
  const request = { inputs, threads, train, infer };
  return runPeerScript<SegmenterPeerResult>(python, peerScript("segmenter.py"), request);
};
