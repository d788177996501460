/**
 * Spec → graphs, for every model kind: the training graph (forward, losses, backward and optimizer
 * update in one ONNX run) and the inference graph. Each kind's interpreter lives in a module of its own
 * (`segmenter.ts`, `classifier.ts`, `panoptic.ts`); these functions dispatch on the model's `_tag`.
 *
 * A panoptic model trains with a plan of three stages (cost graph → Hungarian matching on the host →
 * loss + update graph), a LarvSeg segmenter with its attentive classifier with three too (memory bank
 * read on the host → training graph → bank write on the host): `trainingStages` gives every kind's
 * stages, `trainingGraph` the graph one.
 */
import type { Model } from "../dsl/model.ts";
import type { Graph, Tensor } from "../ir/graph.ts";
import type { OptimizerConfig } from "../ir/optim.ts";
import * as classifier from "./classifier.ts";
import * as segmenter from "./segmenter.ts";
import * as panoptic from "./panoptic.ts";
import { graphStage, type Stage } from "../ir/plan.ts";
import type { Shapes } from "./shapes.ts";
import type { BackboneMode } from "./frozen_backbone.ts";

/**
 * The training graph of any model kind; `ranker` is the independent scheme's frozen model, `backbone`
 * how the backbone trains (`frozen_backbone.ts`; a classifier's always trains).
 */
export const trainingGraph = (
  model: Model,
  shapes: Shapes,
  optimizer: OptimizerConfig,
  ranker?: segmenter.Ranker,
  backbone: BackboneMode = "trained",
): Graph => {
  switch (model._tag) {
    case "Segmenter":
      return segmenter.trainingGraph(model, shapes, optimizer, ranker, backbone);
    case "Classifier":
      return classifier.trainingGraph(model, shapes, optimizer);
    case "PanopticSegmenter":
      return panoptic.trainingGraph(model, shapes, optimizer, backbone);
  }
};

/**
 * The feature graph of a segmenter or panoptic model: `images` → the backbone outputs its head reads
 * (`features.<i>`), what a frozen backbone's feature cache holds; undefined for a classifier.
 */
export const featureGraph = (model: Model, shapes: Shapes): Graph | undefined => {
  switch (model._tag) {
    case "Segmenter":
      return segmenter.featureGraph(model, shapes);
    case "Classifier":
      return undefined;
    case "PanopticSegmenter":
      return panoptic.featureGraph(model, shapes);
  }
};

/**
 * The stages of a training plan: one graph (forward, losses, backward, update) for semantic and
 * classification models (with LarvSeg's memory bank read and written by host stages around it); cost
 * graph → matching host stage → loss + update graph for a panoptic one.
 * `graph` is the stage that declares the plan's state (parameters, optimizer moments).
 */
export const trainingStages = (
  model: Model,
  shapes: Shapes,
  optimizer: OptimizerConfig,
  ranker?: segmenter.Ranker,
  backbone: BackboneMode = "trained",
): { graph: Graph; stages: Stage[] } => {
  if (model._tag === "PanopticSegmenter") return panoptic.trainingStages(model, shapes, optimizer, backbone);
  if (model._tag === "Segmenter") return segmenter.trainingStages(model, shapes, optimizer, ranker, backbone);
  const graph = trainingGraph(model, shapes, optimizer, ranker);
  return { graph, stages: [graphStage(graph, { name: "train" })] };
};

/** The forward pass and losses of the training graph, without gradients or updates. */
export const lossGraph = (
  model: Model,
  shapes: Shapes,
  ranker?: segmenter.Ranker,
): { graph: Graph; loss: Tensor } => {
  switch (model._tag) {
    case "Segmenter":
      return segmenter.lossGraph(model, shapes, ranker);
    case "Classifier":
      return classifier.lossGraph(model, shapes);
    case "PanopticSegmenter":
      return panoptic.lossGraph(model, shapes);
  }
};

/** The inference graph of any model kind. */
export const inferenceGraph = (
  model: Model,
  shapes: Shapes,
  options: segmenter.InferenceOptions & panoptic.PanopticInferenceOptions = {},
): Graph => {
  switch (model._tag) {
    case "Segmenter":
      return segmenter.inferenceGraph(model, shapes, options);
    case "Classifier":
      return classifier.inferenceGraph(model, shapes);
    case "PanopticSegmenter":
      return panoptic.inferenceGraph(model, shapes, options);
  }
};
