/**
 * A frozen backbone in the training plans (`train.frozenBackbone`): the three ways a kind's interpreter
 * builds the backbone part of a training plan, and the pieces they share.
 *
 * - `"trained"`: the backbone is part of the model that trains (fine-tuning).
 * - `"frozen"`: the backbone is traced inside `Graph.frozen` — its variables are state, not parameters:
 *   no gradient, no optimizer moments, never updated, and since nothing trainable feeds it, autodiff
 *   builds no backward node under `model.backbone` — in evaluation mode (no dropout). It runs every step,
 *   on that step's images.
 * - `"cached"`: the training graphs have no backbone and no `images` input: the backbone's outputs are
 *   inputs `features.<i>`, with the names and shapes of the kind's feature graph's outputs (computed
 *   once per training image and augmentation draw, read from the feature cache). The backbone's
 *   variables stay in the plan as the state of a host stage that does nothing (`frozenState`), so they
 *   are initialized, loaded from the pretrained file, checkpointed and restored like every other state:
 *   a checkpoint holds the whole model, and eval, predict and export read nothing else.
 *
 * The feature graph is the backbone alone, `images` → `features.<i>`, traced frozen under scope `model`
 * (its variables are the whole model's `model.backbone.*`): the cache is built with it, and the cached
 * training graph's feature inputs are its outputs.
 */
import { Effect } from "effect";
import { Graph, type Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import type { HostStage, StateSpec } from "../ir/plan.ts";
import type { Shapes } from "./shapes.ts";

/** How a training plan treats the backbone (module comment). */
export type BackboneMode = "trained" | "frozen" | "cached";

/** Prefix of the feature graph's outputs and of the cached training graph's inputs: `features.0`, … */
export const FEATURES = "features.";

/** The name of the `i`-th backbone output. */
export const featureName = (i: number): string => `${FEATURES}${i}`;

/**
 * The feature graph: input `images` [b, 3, H, W] → outputs `features.<i>`, the backbone outputs the
 * kind's head reads, as `trace` returns them; traced frozen (evaluation mode is `trace`'s to choose)
 * under scope `model`.
 */
export const featureGraph = (shapes: Shapes, trace: (images: Tensor) => readonly Tensor[]): Graph => {
  const g = new Graph("features");
  const images = o.input(g, "images", [shapes.batch, 3, shapes.height, shapes.width]);
  const outputs = g.scope("model", () => g.frozen(() => trace(images)));
  outputs.forEach((t, i) => g.output(featureName(i), t));
  return g;
};

/** The feature graph's outputs as inputs of graph `g` (same names, dtypes and shapes), in order. */
export const featureInputs = (g: Graph, features: Graph): Tensor[] =>
  [...features.outputs].map(([name, t]) => o.input(g, name, t.shape, t.dtype));

/** The variables a graph declares, as plan state (name, dtype, shape, initializer). */
export const variableState = (g: Graph): StateSpec[] =>
  g.nodes.flatMap((n) =>
    n.prim.op === "variable"
      ? [{ name: n.prim.name, dtype: n.prim.dtype, shape: n.prim.shape, init: n.prim.init }]
      : []
  );

/**
 * The host stage of a cached plan that holds the frozen backbone's variables (those of `features`, the
 * feature graph) as plan state and does nothing when it runs: no graph of the step reads them, but
 * checkpoints carry them, so the run folder holds the whole model.
 */
export const frozenState = (features: Graph): HostStage => ({
  _tag: "HostStage",
  name: "frozen backbone",
  outputs: [],
  run: () => Effect.succeed({}),
  state: variableState(features),
});
