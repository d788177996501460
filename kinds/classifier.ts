/**
 * The classifier kind (`Classifier`: a backbone, global average pooling, a linear layer): one class per
 * image. kappa uses it to check imported ImageNet weights (`deno task classify`, `eval/classify.ts`); it
 * has no training data of its own (no dataset gives per-image classes), so its record has an inference
 * graph and an export, and no training, evaluation or `predict`.
 */
import { Effect } from "effect";
import type { Classifier } from "../dsl/model.ts";
import * as classifier from "../interpret/classifier.ts";
import type { BoundKind, ModelKind } from "./kind.ts";

/** The `Classifier` kind's record. */
export const classifierKind: ModelKind<Classifier> = {
  tag: "Classifier",
  task: "classification",
  bind: (e) =>
    Effect.succeed(
      {
        kind: classifierKind as unknown as ModelKind,
        experiment: e,
        inferenceGraph: (shapes) => classifier.inferenceGraph(e.model, shapes),
        export: {
          open: () =>
            Effect.succeed({
              graph: (shapes) => classifier.inferenceGraph(e.model, shapes),
              outputs: [classifier.LOGITS, classifier.PROBABILITIES],
              metadata: {
                "kappa.experiment": e.name,
                "kappa.classes": String(e.model.classes),
                "kappa.outputs": "logits [batch, K], probabilities [batch, K] (softmax)",
              },
            }),
        },
      } satisfies BoundKind,
    ),
};
