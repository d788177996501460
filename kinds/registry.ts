/**
 * The model kinds' records, by spec `_tag`: the one place the programs (train/, the CLI, mod.ts) find
 * what a model's kind does. The built-in kinds are registered here; a kind of your own is one
 * `registerKind` call (plus `registerModelSchema` in dsl/ for its spec), and then trains, evaluates,
 * predicts and exports through the same entry points:
 *
 * ```ts
 * registerModelSchema({ tag: "ClassShares", schema: ClassShares, violations: () => [] });
 * registerKind(classSharesKind);
 * await Effect.runPromise(train(experiment({ name: "shares", model: classShares(...), ... })));
 * ```
 */
import { Effect } from "effect";
import type { AnyExperiment, ExperimentOf } from "../dsl/experiment.ts";
import type { ModelSpec } from "../dsl/model.ts";
import {
  type BoundKind,
  type KindPart,
  type ModelKind,
  type RunReader,
  UnknownModelKind,
  UnsupportedModelKind,
} from "./kind.ts";
import { semanticKind } from "./semantic.ts";
import { panopticKind } from "./panoptic.ts";
import { classifierKind } from "./classifier.ts";

const kinds = new Map<string, ModelKind>(
  ([semanticKind, panopticKind, classifierKind] as unknown as ModelKind[]).map((k) => [k.tag, k]),
);

/** A second record under a registered tag. */
export class KindConflict extends Error {}

/**
 * Registers a model kind's record. The same record again does nothing; another under a registered tag
 * throws (a programming error, found when the module loads).
 */
export const registerKind = <M extends ModelSpec>(kind: ModelKind<M>): void => {
  const known = kinds.get(kind.tag);
  if (known === (kind as unknown as ModelKind)) return;
  if (known) throw new KindConflict(`model kind "${kind.tag}" already has a record`);
  kinds.set(kind.tag, kind as unknown as ModelKind);
};

/** The record of a model's kind. */
export const kindOf = (model: ModelSpec): Effect.Effect<ModelKind, UnknownModelKind> => {
  const kind = kinds.get(model._tag);
  return kind ? Effect.succeed(kind) : Effect.fail(new UnknownModelKind({ kind: model._tag }));
};

/** The experiment's kind, bound to it; `runs` reads the run folders it depends on (train/'s `loadRun`). */
export const bindKind = (e: AnyExperiment, runs: RunReader) =>
  Effect.flatMap(kindOf(e.model), (kind) => kind.bind(e, runs));

/** A part of a bound kind that a program needs; fails naming the program and the kind when absent. */
export const kindPart = <P extends KindPart>(
  bound: BoundKind,
  part: P,
  program: string,
): Effect.Effect<NonNullable<BoundKind[P]>, UnsupportedModelKind> => {
  const found = bound[part];
  return found ? Effect.succeed(found as NonNullable<BoundKind[P]>) : Effect.fail(
    new UnsupportedModelKind({ program, kind: bound.kind.tag, task: bound.kind.task, needs: part }),
  );
};

/** The experiment when its model is of `kind` (a program that runs one kind only, e.g. `classify`). */
export const requireKind = <M extends ModelSpec>(
  e: AnyExperiment,
  kind: ModelKind<M>,
  program: string,
): Effect.Effect<ExperimentOf<M>, UnsupportedModelKind | UnknownModelKind> =>
  Effect.flatMap(
    kindOf(e.model),
    (found) =>
      found === (kind as unknown as ModelKind) ? Effect.succeed(e as ExperimentOf<M>) : Effect.fail(
        new UnsupportedModelKind({ program, kind: found.tag, task: found.task, needs: { kind: kind.tag } }),
      ),
  );
