/**
 * Running a kappa graph for a parity check: parameters set from the official ones, the forward outputs
 * and, through kappa's autodiff, the gradients of a scalar with respect to named variables and inputs
 * (outputs `grad:<name>`), all on ONNX Runtime's CPU provider in one run.
 */
import { Effect } from "effect";
import type { Graph, Tensor } from "../ir/graph.ts";
import { grad } from "../ir/autodiff.ts";
import * as o from "../ir/ops.ts";
import { graphStage, plan } from "../ir/plan.ts";
import { type Value, value } from "../ir/value.ts";
import { execute } from "../runtime/execute.ts";

export const GRAD = "grad:";

/** A float32 value of `shape` (from float64 data, or numbers). */
export const f32 = (data: ArrayLike<number>, shape: readonly number[]): Value =>
  value("float32", Float32Array.from(data), shape);

/** An int64 value of `shape`. */
export const i64 = (data: ArrayLike<number | bigint>, shape: readonly number[]): Value =>
  value("int64", BigInt64Array.from(Array.from(data, (x) => BigInt(x))), shape);

/** Adds `grad:<name>` outputs: the gradient of `loss` with respect to each named variable or input. */
export const outputGradients = (g: Graph, loss: Tensor, names: readonly string[]): void => {
  const wrt = names.map((n) => {
    const t = g.lookup(n);
    if (!t) throw new Error(`parity: the graph has no variable or input "${n}"`);
    return t;
  });
  grad(loss, wrt).forEach((t, i) => g.output(GRAD + names[i], t));
};

/** L = Σ w ⊙ x with a constant w (reference.py's probe), so that forward outputs can be differentiated. */
export const probe = (x: Tensor, w: ArrayLike<number>): Tensor =>
  o.sum(o.mul(x, o.constant(x.graph, w, x.shape, x.dtype)));

/** Runs every output of `g` once; floats come back as float64, integers as bigint arrays. */
export const runKappa = (
  g: Graph,
  feeds: Readonly<Record<string, Value>>,
  parameters: ReadonlyMap<string, Float64Array> = new Map(),
): Promise<Map<string, Float64Array | BigInt64Array>> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(plan(g.name, g, [graphStage(g)]), { threads: 1 });
    for (const [name, data] of parameters) {
      const t = g.lookup(name)!;
      ex.state.set(name, f32(data, t.shape));
    }
    const out = yield* ex.run(feeds);
    return new Map(
      [...out].map(([k, v]) => [
        k,
        v.data instanceof BigInt64Array
          ? BigInt64Array.from(v.data)
          : Float64Array.from(v.data as Float32Array),
      ]),
    );
  })));
