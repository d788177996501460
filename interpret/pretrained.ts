/**
 * Pretrained weights of a model: the parameter values its `pretrained` backbone file provides, under the
 * names the model's graph gives them (`model.backbone.…`, and `model.classifier.…` for a classifier).
 *
 * The model says what it needs: the graph's parameters under `model.backbone.` (plus the classifier's
 * for the Classifier kind) are looked up in the file through the architecture's name table, strictly
 * (`weights/import.ts`). Source modules the model does not build — the ImageNet classifier under a
 * segmenter, blocks past the last feature map it reads — are declared unused rather than unexpected.
 */
import { Effect } from "effect";
import type { MobileNetV2, MobileNetV2Output, ModelSpec } from "../dsl/model.ts";
import type { Graph } from "../ir/graph.ts";
import type { Plan } from "../ir/plan.ts";
import { importWeights, type ParameterValue, type WeightsError } from "../weights/import.ts";
import { MOBILENET_V2_TORCHVISION } from "../weights/mobilenet_v2_names.ts";

/** The last torchvision `features.{i}` module each MobileNetV2 output needs. */
const LAST_FEATURE: Record<MobileNetV2Output, number> = { c2: 3, c3: 6, c4: 13, c5: 17, final: 18 };
const TORCHVISION_FEATURES = 18;

/** The torchvision modules a MobileNetV2 backbone (and, for a classifier, its head) leaves unused. */
const unusedModules = (b: MobileNetV2, withClassifier: boolean): string[] => {
  const last = Math.max(...b.outputs.map((o) => LAST_FEATURE[o]));
  const past = Array.from({ length: TORCHVISION_FEATURES - last }, (_, i) => `features.${last + 1 + i}.`);
  return withClassifier ? past : [...past, "classifier."];
};

const MODEL = "model.";

/** The variables of a graph, or the state of a plan (whose host stages may hold a frozen backbone's). */
const variablesOf = (g: Graph | Plan): { name: string; shape: readonly number[] }[] =>
  "stages" in g
    ? g.state.map(({ name, shape }) => ({ name, shape }))
    : g.nodes.flatMap((n) => (n.prim.op === "variable" ? [{ name: n.prim.name, shape: n.prim.shape }] : []));

/**
 * The pretrained values of `model`'s parameters in graph `g` or plan `g` (empty when its backbone has no
 * `pretrained` file), for a model of any kind: its backbone's (and a Classifier's head), trained or
 * frozen (a frozen backbone's variables are state, not parameters; in a cached plan they are only in
 * the plan's state). Fails with every key that does not fit, naming the file.
 */
export const pretrainedValues = (
  model: ModelSpec,
  g: Graph | Plan,
): Effect.Effect<Map<string, ParameterValue>, WeightsError> => {
  const b = model.backbone;
  if (b._tag !== "MobileNetV2" || b.pretrained === null) return Effect.succeed(new Map());
  const withClassifier = model._tag === "Classifier";
  const prefixes = withClassifier ? ["backbone.", "classifier."] : ["backbone."];
  const expected = new Map<string, readonly number[]>();
  // Only `model.` names: optimizer moments (`adam.m:model.…`) are state of the same shapes, never weights.
  for (const { name, shape } of variablesOf(g)) {
    if (!name.startsWith(MODEL)) continue;
    const path = name.slice(MODEL.length);
    if (prefixes.some((p) => path.startsWith(p))) expected.set(path, shape);
  }
  return Effect.map(
    importWeights(b.pretrained, MOBILENET_V2_TORCHVISION, expected, {
      unused: unusedModules(b, withClassifier),
    }),
    (values) => new Map([...values].map(([path, v]) => [MODEL + path, v])),
  );
};
