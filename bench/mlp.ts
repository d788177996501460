/**
 * The benchmarked model: an MLP training step (forward, backward and SGD-momentum update in one graph),
 * its fixed batch, the FLOPs it does, a graph that only moves the same state in and out, and the file
 * that hands our initial parameters and the batch to the PyTorch peer.
 */
import { Graph, minimize, ops as o, type Plan, sgd, type Value, value } from "../mod.ts";
import {
  describe,
  encodeSafetensors,
  linear,
  liveNodes,
  parameters,
  type Prim,
  random,
  type Rule,
  RULES,
  softmaxCrossEntropy,
  type StoredTensor,
  uniform,
  zeros,
} from "../profiling.ts";

export interface MlpSpec {
  /** Layer widths, input first: 784 → 1024 → 1024 → 10 has three Linear layers. */
  readonly widths: readonly number[];
  readonly batch: number;
  readonly lr: number;
  readonly momentum: number;
}

export const MLP: MlpSpec = { widths: [784, 1024, 1024, 10], batch: 256, lr: 0.01, momentum: 0.9 };

/** Names of the Linear layers, in order; their parameters are `<name>.weight` ([in, out]) and `<name>.bias`. */
export const layerNames = (spec: MlpSpec): string[] => spec.widths.slice(1).map((_, i) => `model.fc${i + 1}`);

/**
 * The training step: Linear layers with ReLU between them, softmax cross-entropy, and `minimize` with
 * SGD (momentum, no weight decay). Weights start uniform in ±1/√fan-in like PyTorch's `nn.Linear`, so
 * the loss moves visibly within a few steps.
 */
export const mlpTrainingGraph = (spec: MlpSpec): Graph => {
  const g = new Graph("mlp");
  const x = o.input(g, "x", [spec.batch, spec.widths[0]]);
  const y = o.input(g, "y", [spec.batch], "int64");
  const logits = g.scope("model", () =>
    spec.widths.slice(1).reduce((h, out, i) => {
      const bound = 1 / Math.sqrt(h.shape[1]);
      const z = linear(h, out, { name: `fc${i + 1}`, init: uniform(-bound, bound) });
      return i < spec.widths.length - 2 ? o.relu(z) : z;
    }, x));
  const loss = g.output("loss", softmaxCrossEntropy(logits, y));
  minimize(loss, { optimizer: sgd({ momentum: spec.momentum }) });
  return g;
};

/** The fixed batch every step sees: standard normal inputs, labels uniform over the classes. */
export const mlpBatch = (spec: MlpSpec, seed = 3): { x: Float32Array; y: BigInt64Array } => {
  const rng = random(seed);
  const classes = spec.widths[spec.widths.length - 1];
  return {
    x: Float32Array.from({ length: spec.batch * spec.widths[0] }, () => rng.normal()),
    y: BigInt64Array.from({ length: spec.batch }, () => BigInt(rng.int(classes))),
  };
};

/** The feeds of one step: the batch, the learning rate and the step number (SGD ignores it). */
export const mlpFeeds = (spec: MlpSpec, batch = mlpBatch(spec)): Record<string, Value> => ({
  x: value("float32", batch.x, [spec.batch, spec.widths[0]]),
  y: value("int64", batch.y, [spec.batch]),
  lr: value("float32", Float32Array.of(spec.lr), []),
  step: value("float32", Float32Array.of(1), []),
});

const ruleOf = (prim: Prim) => RULES[prim.op] as unknown as Rule<Prim>;

export interface StepFlops {
  /** Forward FLOPs as `describe` counts them. */
  readonly forward: number;
  /** Every node the step computes (forward, backward, update), by the same per-op rules. */
  readonly step: number;
  /** The part of `step` in matmuls and convolutions. */
  readonly matmul: number;
}

/**
 * FLOPs of one training step, counted on the graph rather than estimated as 3× forward: the first
 * layer needs no input gradient, so the count is nearer 2.6× forward for this MLP.
 */
export const stepFlops = (g: Graph): StepFlops => {
  let step = 0, matmul = 0;
  for (const n of liveNodes(g, [...g.outputs.values()])) {
    const flops = ruleOf(n.prim).flops(n.prim, n.outputs);
    step += flops;
    if (n.prim.op === "matmul" || n.prim.op === "conv") matmul += flops;
  }
  return { forward: describe(g).at(-1)!.flops, step, matmul };
};

/**
 * A graph over the same state as `p` that computes nothing: each entry comes back unchanged as its
 * `next:` output. Its run time is what the runtime spends per step feeding the state in and copying it
 * out (plus one in-ORT copy per Identity, so it is an upper bound on that overhead).
 */
export const stateRoundTripGraph = (p: Plan): Graph => {
  const g = new Graph("state");
  for (const s of p.state) {
    g.output(`next:${s.name}`, o.variable(g, s.name, s.shape, zeros, { dtype: s.dtype }));
  }
  return g;
};

/** Number of float values in the state of `p` (parameters and momentum buffers). */
export const stateSize = (p: Plan): number =>
  p.state.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);

/** The peer's input file: our initial parameters by name (weights [in, out]) and the batch. */
export const peerInputs = (
  spec: MlpSpec,
  g: Graph,
  state: ReadonlyMap<string, Value>,
  batch = mlpBatch(spec),
): Uint8Array => {
  const tensors: Record<string, StoredTensor> = {
    x: { dtype: "F32", shape: [spec.batch, spec.widths[0]], data: batch.x },
    y: { dtype: "I64", shape: [spec.batch], data: batch.y },
  };
  for (const p of parameters(g)) {
    const prim = g.producer(p).prim;
    if (prim.op !== "variable") continue;
    const v = state.get(prim.name)!;
    tensors[prim.name] = { dtype: "F32", shape: [...v.dims], data: v.data as Float32Array };
  }
  return encodeSafetensors(tensors, { layers: layerNames(spec).join(",") });
};
