/**
 * Execution plans: what a program runs, as data. A plan is a sequence of stages — graph stages (a
 * graph, or the part of it that some outputs need) and host stages (functions of named values, e.g.
 * Hungarian matching between a cost graph and a loss graph) — plus named state (parameters, optimizer
 * moments, buffers) and the feeds the caller gives each run. Running a plan (`runtime/execute.ts`)
 * feeds the caller's inputs and the current state to the stages in order and replaces each state entry
 * `x` with the stage output `next:x` when one exists.
 *
 * Building a plan lowers nothing and loads no ONNX Runtime: the runtime lowers each graph stage for
 * its provider when it opens the stage's session.
 */
import { Data, type Effect } from "effect";
import type { Graph } from "./graph.ts";
import type { Init } from "./init.ts";
import type { LowerTarget } from "./primitives.ts";
import { signature, type ValueSpec } from "./live.ts";
import type { Value } from "./value.ts";

/** A stage failed while a plan ran (a session, a host stage), or a feed is missing or malformed. */
export class RuntimeError
  extends Data.TaggedError("RuntimeError")<{ readonly stage: string; readonly reason: string }> {
  override get message(): string {
    return `${this.stage}: ${this.reason}`;
  }
}

export interface GraphStage {
  readonly _tag: "GraphStage";
  readonly name: string;
  readonly graph: Graph;
  /** The graph outputs this stage computes (default: all of them). */
  readonly outputs?: readonly string[];
  /** Lower for this provider whatever the plan runs on (tests of a provider's lowering on the CPU). */
  readonly target?: LowerTarget;
  /** What the stage reads (feeds, state, earlier stages' outputs) and returns. */
  readonly inputs: readonly ValueSpec[];
  readonly results: readonly ValueSpec[];
}

export interface HostStage {
  readonly _tag: "HostStage";
  readonly name: string;
  /** The values `run` returns (so later graph stages do not expect them as feeds). */
  readonly outputs: readonly string[];
  /**
   * Reads values computed so far (feeds, state, earlier outputs) and returns new named values. On
   * `webgpu` the state entries are device values (their `data` throws): host stages read graph outputs.
   */
  readonly run: (env: ReadonlyMap<string, Value>) => Effect.Effect<Record<string, Value>, RuntimeError>;
  /**
   * State this stage keeps and updates in place (e.g. LarvSeg's memory bank): part of the plan's state
   * (initialized, checkpointed, restored like any other) but always host arrays, on every provider —
   * never uploaded to a device, since the stage reads and writes their `data`.
   */
  readonly state?: readonly StateSpec[];
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
export const graphStage = (
  g: Graph,
  options: { readonly outputs?: readonly string[]; readonly name?: string; readonly target?: LowerTarget } =
    {},
): GraphStage => {
  const s = signature(g, options.outputs);
  return {
    _tag: "GraphStage",
    name: options.name ?? g.name,
    graph: g,
    ...(options.outputs ? { outputs: options.outputs } : {}),
    ...(options.target ? { target: options.target } : {}),
    inputs: s.inputs,
    results: s.outputs,
  };
};

/** A plan made of stages; state and feeds are derived from the graph stages' inputs. */
export const plan = (name: string, g: Graph, stages: readonly Stage[]): Plan => {
  const state = new Map<string, StateSpec>();
  const feeds = new Map<string, ValueSpec>();
  const produced = new Set<string>();
  for (const stage of stages) {
    if (stage._tag !== "GraphStage") {
      for (const name of stage.outputs) produced.add(name);
      for (const spec of stage.state ?? []) state.set(spec.name, spec);
      continue;
    }
    for (const v of stage.inputs) {
      const t = g.lookup(v.name);
      const prim = t && g.producer(t).prim;
      if (prim?.op === "variable") state.set(v.name, { ...v, init: prim.init });
      else if (!produced.has(v.name)) feeds.set(v.name, v);
    }
    for (const v of stage.results) produced.add(v.name);
  }
  return { name, stages, state: [...state.values()], feeds: [...feeds.values()] };
};
