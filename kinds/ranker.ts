/**
 * The independent single-task scheme: the ranking comes from a separately trained multi-label model,
 * named by its run folder (`scheme.ranker`). Its spec and checkpoint are read from there; its parameters
 * enter the segmenter's graph as frozen state under `ranker.` (no gradient, never updated).
 */
import { Data, Effect } from "effect";
import type { ExperimentOf } from "../dsl/experiment.ts";
import type { Segmenter } from "../dsl/model.ts";
import type { Ranker } from "../interpret/segmenter.ts";
import { trainSize } from "../interpret/shapes.ts";
import type { Value } from "../ir/value.ts";
import type { RunReader } from "./kind.ts";

/** The ranker run cannot serve as one. */
export class RankerError
  extends Data.TaggedError("RankerError")<{ readonly dir: string; readonly reason: string }> {
  override get message(): string {
    return `model.scheme.ranker: ${this.dir}: ${this.reason}`;
  }
}

export interface LoadedRanker extends Ranker {
  /** The ranker's parameters under their names in the segmenter's graph (`ranker.<path>`). */
  readonly state: ReadonlyMap<string, Value>;
  readonly checkpoint: string;
}

/** Ranker variable names in the segmenter's graph: the ranker's `model.<path>` becomes `ranker.<path>`. */
export const rankerName = (name: string): string => `ranker.${name.replace(/^model\./, "")}`;

/** The ranker of an independent-scheme experiment (undefined for the joint scheme), read by `runs`. */
export const loadRanker = (e: ExperimentOf<Segmenter>, runs: RunReader) =>
  Effect.gen(function* () {
    if (e.model.scheme._tag !== "Independent") return undefined;
    const segmenter = e.model, scheme = e.model.scheme;
    const run = yield* runs(scheme.ranker).pipe(
      Effect.mapError((err) => new RankerError({ dir: scheme.ranker, reason: err.message })),
    );
    if (run.experiment.model._tag !== "Segmenter") {
      return yield* new RankerError({
        dir: scheme.ranker,
        reason: `its model is a ${run.experiment.model._tag}, not a segmenter`,
      });
    }
    const model = run.experiment.model as Segmenter;
    if (!model.xi) {
      return yield* new RankerError({ dir: scheme.ranker, reason: "its model has no multi-label head (xi)" });
    }
    if (model.classes !== segmenter.classes) {
      return yield* new RankerError({
        dir: scheme.ranker,
        reason: `ranks ${model.classes} classes, the segmenter has ${segmenter.classes}`,
      });
    }
    const state = new Map(
      [...run.state].filter(([k]) => k.startsWith("model.")).map(([k, v]) => [rankerName(k), v]),
    );
    return {
      model,
      trainSize: trainSize(run.experiment),
      state,
      checkpoint: run.checkpoint,
    } satisfies LoadedRanker;
  });
