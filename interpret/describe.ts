/**
 * The describe interpreter: parameters and forward GFLOPs per component of a model, like the
 * papers' "#params / FLOPs" columns, for one image at the training crop size.
 */
import type { Model } from "../dsl/model.ts";
import type { Experiment } from "../dsl/experiment.ts";
import { featureGraph, inferenceGraph, trainingStages } from "./graphs.ts";
import { describe } from "../ir/describe.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { liveNodes } from "../ir/live.ts";
import { type Prim, type Rule, RULES } from "../ir/primitives.ts";
import { sizeOf } from "../ir/dtype.ts";
import { panopticForward } from "../layers/panoptic.ts";
import { optimizerConfig } from "./optimizer.ts";
import { inferenceShapes } from "./shapes.ts";
import { type BackboneMode, variableState } from "./frozen_backbone.ts";

export interface ComponentCost {
  readonly component: string;
  readonly params: number;
  readonly gflops: number;
}

export interface ModelDescription {
  readonly input: readonly [number, number];
  readonly components: readonly ComponentCost[];
}

const COMPONENTS: [string, RegExp][] = [
  ["backbone", /^model\.backbone/],
  ["neck (pixel token projection)", /^model\.proj/],
  ["ξ (multi-label head)", /^model\.xi/],
  ["ψ (pixel head) + τ", /^model\.(psi|temperature)/],
  // The panoptic mask transformer's parts, in kMaX's names.
  ["pixel decoder", /^model\.pixelDecoder/],
  ["transformer decoder (N queries)", /^model\.transformerDecoder/],
  ["class head (K + 1)", /^model\.classHead/],
  ["mask embeddings · pixel embeddings", /^model\.(maskEmbeddingHead|pixelEmbeddingHead)/],
  ["RankSeg multi-label head", /^model\.rankSegHead/],
];

/** Costs per component; "other" holds upsampling, argmax and the scatter back to K classes. */
export const describeModel = (
  spec: Model,
  [height, width]: readonly [number, number],
): ModelDescription => {
  const g = inferenceGraph(spec, { batch: 1, height, width, trainSize: [height, width] });
  const rows = describe(g, { depth: 8 });
  const total = rows.pop()!;
  const sums = new Map<string, { params: number; flops: number }>();
  for (const r of rows) {
    const name = COMPONENTS.find(([, re]) => re.test(r.scope))?.[0] ?? "other";
    const s = sums.get(name) ?? { params: 0, flops: 0 };
    sums.set(name, { params: s.params + r.params, flops: s.flops + r.flops });
  }
  const components = [...COMPONENTS.map(([n]) => n), "other"]
    .filter((n) => sums.has(n))
    .map((n) => ({ component: n, params: sums.get(n)!.params, gflops: sums.get(n)!.flops / 1e9 }));
  return {
    input: [height, width],
    components: [
      ...components,
      { component: "total", params: total.params, gflops: total.flops / 1e9 },
      ...trainingOnly(spec, [height, width]),
    ],
  };
};

/**
 * Parts that exist only in training, listed after the total (which is the inference graph's): the panoptic
 * model's auxiliary semantic head.
 */
const trainingOnly = (spec: Model, [height, width]: readonly [number, number]): ComponentCost[] => {
  if (spec._tag !== "PanopticSegmenter") return [];
  const g = new Graph("train");
  const images = o.input(g, "images", [1, 3, height, width]);
  const out = g.scope("model", () => panopticForward(spec, images, { mode: "train" }));
  g.output("semantic", out.semanticLogits!);
  const head = describe(g, { depth: 8 }).filter((r) => /^model\.semanticHead/.test(r.scope));
  return [{
    component: "aux. semantic head (training only)",
    params: head.reduce((a, r) => a + r.params, 0),
    gflops: head.reduce((a, r) => a + r.flops, 0) / 1e9,
  }];
};

export const formatDescription = (name: string, d: ModelDescription): string => {
  const lines = [
    `${name}: one ${d.input[0]}×${d.input[1]} image, forward pass (GFLOPs count 2 per multiply-add)`,
    `${"component".padEnd(32)}${"params".padStart(14)}${"GFLOPs".padStart(12)}`,
  ];
  for (const c of d.components) {
    if (c.component === "total") lines.push("-".repeat(58));
    lines.push(
      `${c.component.padEnd(32)}${c.params.toLocaleString("en-US").padStart(14)}${
        c.gflops.toFixed(3).padStart(12)
      }`,
    );
  }
  return lines.join("\n");
};

/** One way of training the model, costed per training crop. */
export interface StepCost {
  readonly mode: BackboneMode;
  /** Forward + backward + optimizer update of one crop (every graph stage of the plan), in GFLOPs. */
  readonly gflops: number;
}

/** What a frozen backbone leaves to train (`train.frozenBackbone`), and a training step's cost each way. */
export interface TrainingDescription {
  /** The frozen backbone's parameters (no gradient, no update) and cached draws, when it is frozen. */
  readonly frozen?: { readonly params: number; readonly draws: number; readonly scope: string };
  /** Parameters the optimizer updates. */
  readonly trainable: number;
  /** A step per crop: fine-tuning ("trained"), the frozen backbone run each step, the head on cached features. */
  readonly steps: readonly StepCost[];
}

/** GFLOPs of every graph stage of a training plan (forward, backward and update nodes alike). */
const planGflops = (stages: ReturnType<typeof trainingStages>["stages"]): number =>
  stages.reduce((total, stage) => {
    if (stage._tag !== "GraphStage") return total;
    const g = stage.graph;
    const outputs = (stage.outputs ?? [...g.outputs.keys()]).map((n) => g.outputs.get(n)!);
    return total +
      liveNodes(g, outputs).reduce(
        (a, n) => a + ((RULES[n.prim.op] as unknown as Rule<Prim>).flops(n.prim, n.outputs) ?? 0),
        0,
      );
  }, 0) / 1e9;

/**
 * The training side of `describe` for a segmenter or panoptic model: which parameters a frozen
 * backbone freezes and what a training step costs per crop with the whole model trained, with the
 * backbone frozen (run every step, no backward) and with its outputs read from a feature cache (the
 * head alone). Undefined for models without a feature graph and for the independent scheme (its ranker
 * is another run's).
 */
export const describeTraining = (e: Experiment): TrainingDescription | undefined => {
  const model = e.model;
  if (model._tag === "Segmenter" && model.scheme._tag === "Independent") return undefined;
  const shapes = inferenceShapes(e, 1);
  const features = featureGraph(model, shapes);
  if (!features) return undefined;
  const optimizer = optimizerConfig(e.train);
  const modes: BackboneMode[] = ["trained", "frozen", "cached"];
  const steps = modes.map((mode) => ({
    mode,
    gflops: planGflops(trainingStages(model, shapes, optimizer, undefined, mode).stages),
  }));
  const count = (g: Graph, trainable: boolean) =>
    g.nodes.reduce(
      (a, n) => a + (n.prim.op === "variable" && n.prim.trainable === trainable ? sizeOf(n.prim.shape) : 0),
      0,
    );
  const frozen = e.train.frozenBackbone;
  const mode: BackboneMode = frozen === undefined ? "trained" : frozen.draws > 0 ? "cached" : "frozen";
  const { graph } = trainingStages(model, shapes, optimizer, undefined, mode);
  return {
    ...(frozen
      ? {
        frozen: {
          params: variableState(features).reduce((a, v) => a + sizeOf(v.shape), 0),
          draws: frozen.draws,
          scope: "model.backbone",
        },
      }
      : {}),
    trainable: count(graph, true),
    steps,
  };
};

const STEP_NAMES: Record<BackboneMode, string> = {
  trained: "fine-tuning the whole model",
  frozen: "frozen backbone, run each step",
  cached: "head only, features from the cache",
};

/** The training description as lines under describe's table. */
export const formatTraining = (
  d: TrainingDescription,
  [height, width]: readonly [number, number],
): string => {
  const n = (x: number) => x.toLocaleString("en-US");
  const lines = [
    d.frozen
      ? `train.frozenBackbone (${
        d.frozen.draws > 0 ? `${d.frozen.draws} cached augmentation draws per image` : "no cache"
      }): the ${n(d.frozen.params)} parameters under ${d.frozen.scope} are frozen (no gradient, no update, ` +
        `evaluation mode); ${n(d.trainable)} parameters train`
      : `all ${n(d.trainable)} parameters train (train.frozenBackbone would freeze the backbone)`,
    `training step, one ${height}×${width} crop (forward + backward + update, GFLOPs):`,
    ...d.steps.map((s) => `  ${STEP_NAMES[s.mode].padEnd(40)}${s.gflops.toFixed(3).padStart(10)}`),
  ];
  return lines.join("\n");
};
