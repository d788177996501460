/**
 * The model kinds an experiment may hold: a registry of their schemas and cross-field rules, keyed by
 * `_tag`. The built-in kinds (Segmenter, Classifier, PanopticSegmenter) are registered here; a kind of
 * your own registers its schema with `registerModelSchema` (and its record with `registerKind` of
 * `kinds/registry.ts`), after which `decodeExperiment` and `loadExperiment` validate it like any other.
 *
 * ```ts
 * const ClassShares = Schema.TaggedStruct("ClassShares", { classes: Schema.Int, backbone: Backbone });
 * registerModelSchema({ tag: "ClassShares", schema: ClassShares, violations: () => [] });
 * ```
 */
import { Data, Schema } from "effect";
import { Classifier, type ModelSpec, PanopticSegmenter, Segmenter } from "./model.ts";
import { backboneViolations, panopticViolations, segmenterViolations, type Violation } from "./validate.ts";

/** A model kind's spec schema and the rules that tie its fields together. */
export interface ModelSchema<M extends ModelSpec = ModelSpec> {
  /** The spec's `_tag`, the key the kind is registered and found by. */
  readonly tag: M["_tag"];
  /** A `Schema.TaggedStruct` of the spec (`_tag`, `classes`, `backbone` and the kind's own fields). */
  readonly schema: Schema.Codec<M, unknown>;
  /** Cross-field rules, each violation's path under `path` (`"model"` in an experiment). */
  readonly violations: (m: M, path: string) => Violation[];
}

/** Two different schemas were registered under one tag. */
export class ModelKindConflict extends Data.TaggedError("ModelKindConflict")<{ readonly tag: string }> {
  override get message(): string {
    return `model kind "${this.tag}" is already registered with another schema`;
  }
}

const segmenter: ModelSchema<Segmenter> = {
  tag: "Segmenter",
  schema: Segmenter,
  violations: segmenterViolations,
};
const classifier: ModelSchema<Classifier> = {
  tag: "Classifier",
  schema: Classifier,
  violations: (m, path) => backboneViolations(m.backbone, `${path}.backbone`),
};
const panopticSegmenter: ModelSchema<PanopticSegmenter> = {
  tag: "PanopticSegmenter",
  schema: PanopticSegmenter,
  violations: panopticViolations,
};
const BUILT_IN = [segmenter, classifier, panopticSegmenter] as unknown as readonly ModelSchema[];

const registry = new Map<string, ModelSchema>(BUILT_IN.map((k) => [k.tag, k]));
/** Bumped on every registration, so that schemas built from the registry know when to rebuild. */
let version = 0;

/**
 * Registers a model kind's schema. Registering the same entry again does nothing; another entry under
 * a registered tag throws `ModelKindConflict` (a programming error, found when the module loads).
 */
export const registerModelSchema = <M extends ModelSpec>(kind: ModelSchema<M>): void => {
  const known = registry.get(kind.tag);
  if (known === (kind as unknown as ModelSchema)) return;
  if (known) throw new ModelKindConflict({ tag: kind.tag });
  registry.set(kind.tag, kind as unknown as ModelSchema);
  version++;
};

/** The registered model kinds' tags, built-in ones first. */
export const modelKindTags = (): string[] => [...registry.keys()];

/** The registry's version: it changes whenever a kind is registered. */
export const modelKindsVersion = (): number => version;

/** The schema of a model of any registered kind (a union discriminated on `_tag`). */
export const modelSchema = (): Schema.Codec<ModelSpec, unknown> =>
  Schema.Union([...registry.values()].map((k) => k.schema)) as unknown as Schema.Codec<ModelSpec, unknown>;

/** The cross-field rules of a model of any registered kind (its schema has been checked). */
export const modelViolations = (m: ModelSpec, path = "model"): Violation[] =>
  registry.get(m._tag)?.violations(m, path) ?? [];
