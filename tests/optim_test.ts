/**
 * In-graph optimizers against an independent pure-TypeScript float64 reference: a 2-layer tanh MLP
 * with hand-written backprop, PyTorch update rules, parameter groups and global-norm clipping.
 */
import { Effect } from "effect";
import { assert, assertClose } from "./assert.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { normal } from "../ir/init.ts";
import { adamW, minimize, type OptimizerConfig, sgd } from "../ir/optim.ts";
import { execute } from "../runtime/execute.ts";
import { graphStage, plan } from "../ir/plan.ts";
import { value } from "../ir/value.ts";
import { random } from "../core/random.ts";

type Params = Record<"w1" | "b1" | "w2" | "b2", number[]>;
const SHAPES = { w1: [3, 5], b1: [5], w2: [5, 2], b2: [2] } as const;
const NAMES = { w1: "fc1.weight", b1: "fc1.bias", w2: "fc2.weight", b2: "fc2.bias" } as const;
const [N, IN, HID, OUT] = [4, 3, 5, 2];

/** Loss and gradients of mean((tanh(x·W1 + b1)·W2 + b2 − t)²), by hand. */
const referenceGrads = (p: Params, x: number[], t: number[]): Params => {
  const h = new Array(N * HID).fill(0), y = new Array(N * OUT).fill(0);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < HID; j++) {
      let z = p.b1[j];
      for (let i = 0; i < IN; i++) z += x[n * IN + i] * p.w1[i * HID + j];
      h[n * HID + j] = Math.tanh(z);
    }
    for (let k = 0; k < OUT; k++) {
      let z = p.b2[k];
      for (let j = 0; j < HID; j++) z += h[n * HID + j] * p.w2[j * OUT + k];
      y[n * OUT + k] = z;
    }
  }
  const g: Params = {
    w1: p.w1.map(() => 0),
    b1: p.b1.map(() => 0),
    w2: p.w2.map(() => 0),
    b2: p.b2.map(() => 0),
  };
  for (let n = 0; n < N; n++) {
    const dy = Array.from({ length: OUT }, (_, k) => (2 * (y[n * OUT + k] - t[n * OUT + k])) / (N * OUT));
    for (let k = 0; k < OUT; k++) {
      g.b2[k] += dy[k];
      for (let j = 0; j < HID; j++) g.w2[j * OUT + k] += h[n * HID + j] * dy[k];
    }
    for (let j = 0; j < HID; j++) {
      let dh = 0;
      for (let k = 0; k < OUT; k++) dh += dy[k] * p.w2[j * OUT + k];
      const dz = dh * (1 - h[n * HID + j] ** 2);
      g.b1[j] += dz;
      for (let i = 0; i < IN; i++) g.w1[i * HID + j] += x[n * IN + i] * dz;
    }
  }
  return g;
};

/** PyTorch's SGD / AdamW with groups and clipping, one step, in float64. */
const referenceStep = (
  p: Params,
  grads: Params,
  state: Record<string, number[]>,
  config: OptimizerConfig,
  lr: number,
  step: number,
): Params => {
  const keys = Object.keys(p) as (keyof Params)[];
  let sq = 0;
  for (const k of keys) for (const v of grads[k]) sq += v * v;
  const coef = config.clipGradNorm === undefined
    ? 1
    : Math.min(1, config.clipGradNorm / (Math.sqrt(sq) + 1e-6));
  const next = {} as Params;
  for (const k of keys) {
    const group = config.groups?.find((gr) => new RegExp(gr.pattern).test(NAMES[k]));
    const plr = lr * (group?.lrMult ?? 1);
    const o = config.optimizer;
    const wd = (group?.wdMult ?? 1) * o.weightDecay;
    next[k] = p[k].map((w, i) => {
      const gr = grads[k][i] * coef;
      if (o._tag === "SGD") {
        const d = gr + wd * w;
        const buf = (state[`m${k}`] ??= new Array(p[k].length).fill(0));
        buf[i] = o.momentum * buf[i] + d;
        return w - plr * buf[i];
      }
      const m = (state[`m${k}`] ??= new Array(p[k].length).fill(0));
      const v = (state[`v${k}`] ??= new Array(p[k].length).fill(0));
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * gr;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * gr * gr;
      const mHat = m[i] / (1 - o.beta1 ** step), vHat = v[i] / (1 - o.beta2 ** step);
      return w * (1 - plr * wd) - plr * mHat / (Math.sqrt(vHat) + o.epsilon);
    });
  }
  return next;
};

const compareOptimizer = async (config: OptimizerConfig) => {
  const g = new Graph("mlp");
  const x = o.input(g, "x", [N, IN], "float64");
  const t = o.input(g, "t", [N, OUT], "float64");
  const v = (k: keyof Params) => o.variable(g, NAMES[k], SHAPES[k], normal(0.5), { dtype: "float64" });
  const h = o.tanh(o.add(o.matmul(x, v("w1")), v("b1")));
  const y = o.add(o.matmul(h, v("w2")), v("b2"));
  const loss = o.mean(o.mul(o.sub(y, t), o.sub(y, t)));
  g.output("loss", loss);
  minimize(loss, config);
  const rng = random(3);
  const xs = Array.from({ length: N * IN }, () => rng.normal());
  const ts = Array.from({ length: N * OUT }, () => rng.normal());
  await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(plan("mlp", g, [graphStage(g)]), { seed: 11 });
    const keys = Object.keys(NAMES) as (keyof Params)[];
    let ref = Object.fromEntries(
      keys.map((k) => [k, Array.from(ex.state.get(NAMES[k])!.data as Float64Array)]),
    ) as Params;
    const refState: Record<string, number[]> = {};
    for (const [step, lr] of [[1, 0.1], [2, 0.05], [3, 0.02]]) {
      const out = yield* ex.run({
        x: value("float64", Float64Array.from(xs), [N, IN]),
        t: value("float64", Float64Array.from(ts), [N, OUT]),
        lr: value("float64", Float64Array.of(lr), []),
        step: value("float64", Float64Array.of(step), []),
      });
      const norm = out.get("gradNorm")!.data[0] as number;
      // The clipping threshold is below the actual norm, so clipping is exercised.
      if (config.clipGradNorm !== undefined && step === 1) assert(norm > config.clipGradNorm, `norm ${norm}`);
      ref = referenceStep(ref, referenceGrads(ref, xs, ts), refState, config, lr, step);
      for (const k of keys) {
        assertClose(ex.state.get(NAMES[k])!.data as Float64Array, ref[k], {
          atol: 1e-12,
          rtol: 1e-10,
          message: `${config.optimizer._tag} step ${step} ${NAMES[k]}`,
        });
      }
    }
  })));
};

const groups = [{ pattern: "^fc2\\.", lrMult: 10 }, { pattern: "bias$", wdMult: 0 }];

Deno.test("optimizer: SGD with momentum, coupled weight decay, groups and clipping matches the float64 reference", () =>
  compareOptimizer({ optimizer: sgd({ momentum: 0.9, weightDecay: 1e-2 }), groups, clipGradNorm: 0.5 }));

Deno.test("optimizer: AdamW with decoupled weight decay, groups and clipping matches the float64 reference", () =>
  compareOptimizer({ optimizer: adamW({ weightDecay: 0.05 }), groups, clipGradNorm: 0.5 }));

Deno.test("optimizer: plain SGD without clipping matches the float64 reference", () =>
  compareOptimizer({ optimizer: sgd({ momentum: 0 }) }));
