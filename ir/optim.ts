/**
 * In-graph optimizer updates: one ONNX run computes the loss, its gradients and the updated parameters.
 *
 * The learning rate and the step number (1-based, for Adam's bias correction) are scalar graph inputs
 * `lr` and `step`, so schedules (poly, warmup) are computed on the host. Each parameter `p` gets the
 * output `next:p`, and each optimizer moment is a non-trainable variable with its own `next:` output;
 * the runtime swaps them into the state after the run.
 *
 * Semantics follow PyTorch: `SGD` adds weight decay to the gradient before momentum (coupled, as
 * mmsegmentation and the official RankSeg configs use it) unless `decoupled` is set; `AdamW` decays
 * the parameter directly. Parameter groups scale the learning rate and weight decay of the variables
 * whose names match a regular expression (the first matching group wins), like mmsegmentation's
 * `paramwise_cfg.custom_keys`.
 */
import { type DType, isFloat } from "./dtype.ts";
import { type Graph, GraphError, type Tensor } from "./graph.ts";
import { grad } from "./autodiff.ts";
import * as ops from "./ops.ts";
import { zeros } from "./init.ts";
import { NEXT } from "./plan.ts";

export type Optimizer =
  | {
    readonly _tag: "SGD";
    readonly momentum: number;
    readonly weightDecay: number;
    readonly nesterov?: boolean;
    /** Decay the parameter directly (p ← p − lr·wd·p) instead of adding wd·p to the gradient. */
    readonly decoupled?: boolean;
  }
  | {
    readonly _tag: "AdamW";
    readonly beta1: number;
    readonly beta2: number;
    readonly epsilon: number;
    readonly weightDecay: number;
  };

export interface ParamGroup {
  /** Regular expression matched against variable names, e.g. `^model\\.xi\\.` or `\\.(bias|norm)`. */
  readonly pattern: string;
  readonly lrMult?: number;
  readonly wdMult?: number;
}

export interface OptimizerConfig {
  readonly optimizer: Optimizer;
  readonly groups?: readonly ParamGroup[];
  /** Clip the global gradient norm to this value (PyTorch `clip_grad_norm_`). */
  readonly clipGradNorm?: number;
}

export const sgd = (
  { momentum = 0.9, weightDecay = 0, nesterov = false, decoupled = false }: Partial<
    Omit<Extract<Optimizer, { _tag: "SGD" }>, "_tag">
  > = {},
): Optimizer => ({ _tag: "SGD", momentum, weightDecay, nesterov, decoupled });

export const adamW = (
  { beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8, weightDecay = 0.01 }: Partial<
    Omit<Extract<Optimizer, { _tag: "AdamW" }>, "_tag">
  > = {},
): Optimizer => ({ _tag: "AdamW", beta1, beta2, epsilon, weightDecay });

/** The trainable variables of a graph, in creation order. */
export const parameters = (g: Graph): Tensor[] =>
  g.nodes.flatMap((n) => (n.prim.op === "variable" && n.prim.trainable ? [n.outputs[0]] : []));

const nameOf = (p: Tensor): string => {
  const prim = p.graph.producer(p).prim;
  if (prim.op !== "variable") {
    throw new GraphError({ path: "", message: "optimizer: parameters must be variables" });
  }
  return prim.name;
};

export interface Minimized {
  /** The `lr` and `step` scalar inputs and the gradient norm before clipping. */
  readonly lr: Tensor;
  readonly step: Tensor;
  readonly gradNorm: Tensor;
  readonly grads: readonly Tensor[];
}

/** The graph output of a parameter's gradient in a data-parallel graph: `grad:<name>`. */
export const GRAD = "grad:";
/** The graph input of the ranks' mean gradient that a data-parallel update reads: `meanGrad:<name>`. */
export const MEAN_GRAD = "meanGrad:";
/** The output of the gradient norm (before clipping). */
export const GRAD_NORM = "gradNorm";

/** The `lr` and `step` inputs and the checked dtype of the parameters. */
const scheduleInputs = (g: Graph, params: readonly Tensor[]) => {
  const dtype: DType = params[0]?.dtype ?? "float32";
  if (!isFloat(dtype)) throw new GraphError({ path: "", message: `optimizer: parameters must be float` });
  return { dtype, lr: ops.input(g, "lr", [], dtype), step: ops.input(g, "step", [], dtype) };
};

/**
 * The optimizer update of `params` from their gradients `grads` (any tensors of their shapes): the global
 * norm (output `gradNorm`), clipping, and `next:` outputs for parameters and moments, under `optimizer`.
 */
const applyUpdate = (
  params: readonly Tensor[],
  gradients: readonly Tensor[],
  config: OptimizerConfig,
  { dtype, lr, step }: { dtype: DType; lr: Tensor; step: Tensor },
): Minimized => {
  const g = lr.graph;
  let grads = gradients;
  return g.backward(() =>
    g.atPath("optimizer", () => {
      const norm = ops.sqrt(
        grads.map((gr) => ops.sum(ops.mul(gr, gr))).reduce((a, b) => ops.add(a, b), ops.scalar(g, 0, dtype)),
      );
      if (config.clipGradNorm !== undefined) {
        const coef = ops.minimum(ops.div(config.clipGradNorm, ops.add(norm, 1e-6)), 1);
        grads = grads.map((gr) => ops.mul(gr, coef));
      }
      g.output(GRAD_NORM, norm);
      params.forEach((p, i) => {
        const name = nameOf(p);
        const group = config.groups?.find((gr) => new RegExp(gr.pattern).test(name));
        const plr = ops.mul(lr, group?.lrMult ?? 1);
        const wd = (group?.wdMult ?? 1) * config.optimizer.weightDecay;
        const moment = (kind: string) =>
          g.atPath("", () => ops.variable(g, `${kind}:${name}`, p.shape, zeros, { dtype, trainable: false }));
        const next = (v: Tensor, value: Tensor) => g.output(`${NEXT}${nameOf(v)}`, value);
        const o = config.optimizer;
        if (o._tag === "SGD") {
          const d = wd !== 0 && !o.decoupled ? ops.add(grads[i], ops.mul(p, wd)) : grads[i];
          let update = d;
          if (o.momentum !== 0) {
            const buf = moment("momentum");
            const bufNext = ops.add(ops.mul(buf, o.momentum), d);
            next(buf, bufNext);
            update = o.nesterov ? ops.add(d, ops.mul(bufNext, o.momentum)) : bufNext;
          }
          const decayed = wd !== 0 && o.decoupled ? ops.sub(p, ops.mul(ops.mul(plr, wd), p)) : p;
          next(p, ops.sub(decayed, ops.mul(plr, update)));
        } else {
          const m = moment("adam.m"), v = moment("adam.v");
          const mNext = ops.add(ops.mul(m, o.beta1), ops.mul(grads[i], 1 - o.beta1));
          const vNext = ops.add(ops.mul(v, o.beta2), ops.mul(ops.mul(grads[i], grads[i]), 1 - o.beta2));
          next(m, mNext);
          next(v, vNext);
          const mHat = ops.div(mNext, ops.sub(1, ops.pow(ops.scalar(g, o.beta1, dtype), step)));
          const vHat = ops.div(vNext, ops.sub(1, ops.pow(ops.scalar(g, o.beta2, dtype), step)));
          const decayed = wd !== 0 ? ops.sub(p, ops.mul(ops.mul(plr, wd), p)) : p;
          next(p, ops.sub(decayed, ops.mul(plr, ops.div(mHat, ops.add(ops.sqrt(vHat), o.epsilon)))));
        }
      });
      return { lr, step, gradNorm: norm, grads };
    })
  );
};

/**
 * Appends gradients of `loss` and the optimizer update of `params` (default: every trainable variable)
 * to the graph, with outputs `next:<name>` for parameters and moments, and `gradNorm`.
 */
export const minimize = (
  loss: Tensor,
  config: OptimizerConfig,
  params = parameters(loss.graph),
): Minimized => {
  const inputs = scheduleInputs(loss.graph, params);
  return applyUpdate(params, grad(loss, params), config, inputs);
};

/** The two parts of a data-parallel training graph (`minimizeDataParallel`). */
export interface DataParallelParts {
  /** Per parameter: its gradient output (`grad:<name>`) and the mean-gradient input the update reads. */
  readonly gradients: readonly { readonly output: string; readonly input: string; readonly size: number }[];
  /** What the update part computes: `next:` of parameters and moments, and `gradNorm`. */
  readonly updateOutputs: readonly string[];
}

/**
 * `minimize` split for data-parallel training: the graph outputs each parameter's gradient as
 * `grad:<name>`, and the optimizer update reads the ranks' mean gradient from the input
 * `meanGrad:<name>` instead of the local one. A plan runs the gradient part, all-reduces, then the update
 * part (same graph, other outputs): the optimizer, its gradient-norm clipping included, sees the mean
 * gradient, so AdamW steps exactly as one process on the whole batch would.
 */
export const minimizeDataParallel = (
  loss: Tensor,
  config: OptimizerConfig,
  params = parameters(loss.graph),
): DataParallelParts => {
  const g = loss.graph;
  const inputs = scheduleInputs(g, params);
  const grads = grad(loss, params);
  const gradients = params.map((p, i) => {
    const name = nameOf(p);
    g.output(`${GRAD}${name}`, grads[i]);
    return {
      output: `${GRAD}${name}`,
      input: `${MEAN_GRAD}${name}`,
      size: p.shape.reduce((a, b) => a * b, 1),
    };
  });
  const means = params.map((p, i) => ops.input(g, gradients[i].input, p.shape, inputs.dtype));
  const before = new Set(g.outputs.keys());
  applyUpdate(params, means, config, inputs);
  return { gradients, updateOutputs: [...g.outputs.keys()].filter((n) => !before.has(n)) };
};
