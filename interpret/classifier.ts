/**
 * The interpreter of the `Classifier` kind: inference graph `images` → `logits` [b, K] and
 * `probabilities` [b, K] (softmax); training graph with per-image class `labels` [b] and cross-entropy.
 */
import { backboneStride, type Classifier } from "../dsl/model.ts";
import { Graph, type Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { minimize, type OptimizerConfig } from "../ir/optim.ts";
import { classifierForward } from "../layers/classifier.ts";
import { softmaxCrossEntropy } from "../layers/losses.ts";
import type { Shapes } from "./shapes.ts";

/** Output names of a classifier's graphs. */
export const LOGITS = "logits", PROBABILITIES = "probabilities", LOSS = "loss";

const forward = (spec: Classifier, images: Tensor, shapes: Shapes, train: boolean) => {
  const s = backboneStride(spec.backbone);
  const trainGrid = [shapes.trainSize[0] / s, shapes.trainSize[1] / s] as const;
  return images.graph.scope("model", () => classifierForward(spec, images, { trainGrid, train }));
};

const imagesOf = (g: Graph, shapes: Shapes) =>
  o.input(g, "images", [shapes.batch, 3, shapes.height, shapes.width]);

export const inferenceGraph = (spec: Classifier, shapes: Shapes): Graph => {
  const g = new Graph("inference");
  const logits = forward(spec, imagesOf(g, shapes), shapes, false);
  g.output(LOGITS, logits);
  g.output(PROBABILITIES, o.softmax(logits, -1));
  return g;
};

/** Forward and loss: `labels` [b] int32 holds each image's class. */
export const lossGraph = (
  spec: Classifier,
  shapes: Shapes,
  { dataParallel = false }: { readonly dataParallel?: boolean } = {},
): { graph: Graph; loss: Tensor } => {
  const g = new Graph("train", { dataParallel });
  const logits = forward(spec, imagesOf(g, shapes), shapes, true);
  const labels = o.cast(o.input(g, "labels", [shapes.batch], "int32"), "int64");
  const loss = g.scope("loss", () => softmaxCrossEntropy(logits, labels, { ignoreIndex: -1, axis: -1 }));
  return { graph: g, loss: g.output(LOSS, loss) };
};

export const trainingGraph = (spec: Classifier, shapes: Shapes, optimizer: OptimizerConfig): Graph => {
  const { graph, loss } = lossGraph(spec, shapes);
  minimize(loss, optimizer);
  return graph;
};
