/**
 * The optimizer interpreter: a training spec's optimizer, parameter groups and clipping as the engine's
 * in-graph optimizer configuration (`ir/optim.ts`).
 */
import type { TrainConfig } from "../dsl/training.ts";
import type { OptimizerConfig } from "../ir/optim.ts";

/** The engine's optimizer configuration for a training spec. */
export const optimizerConfig = (t: TrainConfig): OptimizerConfig => ({
  optimizer: t.optimizer._tag === "SGD"
    ? {
      _tag: "SGD",
      momentum: t.optimizer.momentum,
      weightDecay: t.optimizer.weightDecay,
      nesterov: t.optimizer.nesterov,
    }
    : {
      _tag: "AdamW",
      beta1: t.optimizer.beta1,
      beta2: t.optimizer.beta2,
      epsilon: t.optimizer.epsilon,
      weightDecay: t.optimizer.weightDecay,
    },
  groups: t.paramGroups,
  clipGradNorm: t.clipGradNorm ?? undefined,
});
