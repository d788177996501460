/**
 * Spec → graphs, for every model kind: the training graph (forward, losses, backward and optimizer
 * update in one ONNX run) and the inference graph. Each kind's interpreter lives in a module of its own
 * (`segmenter.ts`, `classifier.ts`); these functions dispatch on the model's `_tag`.
 */
import type { Model } from "../dsl/model.ts";
import type { Graph, Tensor } from "../plan/graph.ts";
import type { OptimizerConfig } from "../plan/optim.ts";
import * as classifier from "./classifier.ts";
import * as segmenter from "./segmenter.ts";
import type { Shapes } from "./shapes.ts";

/** The training graph of any model kind; `ranker` is the independent scheme's frozen model. */
export const trainingGraph = (
  model: Model,
  shapes: Shapes,
  optimizer: OptimizerConfig,
  ranker?: segmenter.Ranker,
): Graph => {
  switch (model._tag) {
    case "Segmenter":
      return segmenter.trainingGraph(model, shapes, optimizer, ranker);
    case "Classifier":
      return classifier.trainingGraph(model, shapes, optimizer);
  }
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
  }
};

/** The inference graph of any model kind. */
export const inferenceGraph = (
  model: Model,
  shapes: Shapes,
  options: segmenter.InferenceOptions = {},
): Graph => {
  switch (model._tag) {
    case "Segmenter":
      return segmenter.inferenceGraph(model, shapes, options);
    case "Classifier":
      return classifier.inferenceGraph(model, shapes);
  }
};
