/** Small models trained end to end through the runtime reach stated losses on fixed data. */
import { Effect } from "effect";
import { assert } from "./assert.ts";
import { Graph, type Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { adamW, minimize, type OptimizerConfig, sgd } from "../ir/optim.ts";
import { execute } from "../runtime/execute.ts";
import { graphStage, plan } from "../ir/plan.ts";
import { type Value, value } from "../ir/value.ts";
import { random } from "../core/random.ts";
import { linear } from "../layers/linear.ts";
import { transformerBlock } from "../layers/block.ts";
import { softmaxCrossEntropy } from "../layers/losses.ts";

/** Trains for `steps` at a constant learning rate; returns the loss at step 1 and at the last step. */
const train = (
  g: Graph,
  loss: Tensor,
  config: OptimizerConfig,
  feeds: Record<string, Value>,
  lr: number,
  steps: number,
) => {
  g.output("loss", loss);
  minimize(loss, config);
  return Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(plan(g.name, g, [graphStage(g)]), { seed: 1 });
    const losses: number[] = [];
    for (let s = 1; s <= steps; s++) {
      const out = yield* ex.run({
        ...feeds,
        lr: value("float32", Float32Array.of(lr), []),
        step: value("float32", Float32Array.of(s), []),
      });
      losses.push(out.get("loss")!.data[0] as number);
    }
    return { first: losses[0], last: losses[losses.length - 1] };
  })));
};

Deno.test("training: a 2-layer MLP learns XOR blobs (cross-entropy 0.69 → < 0.005 in 200 SGD steps)", async () => {
  const g = new Graph("mlp");
  const x = o.input(g, "x", [64, 2]);
  const y = o.input(g, "y", [64], "int64");
  const logits = g.scope("model", () => linear(o.relu(linear(x, 32, { name: "fc1" })), 2, { name: "fc2" }));
  const rng = random(5);
  const xs = new Float32Array(128), ys = new BigInt64Array(64);
  for (let i = 0; i < 64; i++) {
    const [a, b] = [i % 2, (i >> 1) % 2];
    xs[2 * i] = (a ? 1 : -1) + 0.3 * rng.normal();
    xs[2 * i + 1] = (b ? 1 : -1) + 0.3 * rng.normal();
    ys[i] = BigInt(a ^ b);
  }
  const { first, last } = await train(
    g,
    softmaxCrossEntropy(logits, y),
    { optimizer: sgd({ momentum: 0.9 }) },
    {
      x: value("float32", xs, [64, 2]),
      y: value("int64", ys, [64]),
    },
    0.1,
    200,
  );
  assert(first > 0.6 && first < 0.8, `initial loss ${first}`);
  assert(last < 0.005, `final loss ${last}`);
});

Deno.test("training: a pre-norm transformer block learns a token-mixing regression (0.41 → < 1e-4 in 200 AdamW steps)", async () => {
  const [B, N, D, K] = [4, 8, 16, 4];
  const g = new Graph("block");
  const x = o.input(g, "x", [B, N, D]);
  const t = o.input(g, "t", [B, N, K]);
  const y = g.scope("model", () => linear(transformerBlock(x, { heads: 2 }), K, { name: "head" }));
  // Target: a linear map of the sequence mean (needs attention) plus the token's own features.
  const rng = random(7);
  const xs = Float32Array.from({ length: B * N * D }, () => rng.normal());
  const r = Array.from({ length: D * K }, () => rng.normal() / 4);
  const ts = new Float32Array(B * N * K);
  for (let b = 0; b < B; b++) {
    for (let k = 0; k < K; k++) {
      let m = 0;
      for (let n = 0; n < N; n++) {
        for (let d = 0; d < D; d++) m += (xs[(b * N + n) * D + d] * r[d * K + k]) / N;
      }
      for (let n = 0; n < N; n++) ts[(b * N + n) * K + k] = m + 0.5 * xs[(b * N + n) * D + k];
    }
  }
  const diff = o.sub(y, t);
  const { first, last } = await train(
    g,
    o.mean(o.mul(diff, diff)),
    { optimizer: adamW({ weightDecay: 0 }) },
    {
      x: value("float32", xs, [B, N, D]),
      t: value("float32", ts, [B, N, K]),
    },
    3e-3,
    200,
  );
  assert(first > 0.3, `initial loss ${first}`);
  assert(last < 1e-4, `final loss ${last}`);
});
