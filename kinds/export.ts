/**
 * What `exportModel` (eval/export_model.ts) exports for an experiment's state: its model kind's graph,
 * outputs and metadata — the one export path of the CLI's `export`, benchmarks and tests alike.
 */
import { Data, Effect } from "effect";
import type { AnyExperiment } from "../dsl/experiment.ts";
import type { Value } from "../ir/value.ts";
import type { ExportedModel } from "../eval/export_model.ts";
import type { Failure, RunReader } from "./kind.ts";
import { bindKind, kindPart } from "./registry.ts";

/** The run folder a kind asked for when none may be read (`noRuns`). */
export class NoRunReader extends Data.TaggedError("NoRunReader")<{ readonly dir: string }> {
  override get message(): string {
    return `${this.dir}: this program reads no other run folder (pass a RunReader, e.g. train/'s loadRun)`;
  }
}

/** A `RunReader` that reads nothing: for experiments whose kind depends on no other run. */
export const noRuns: RunReader = (dir) => Effect.fail(new NoRunReader({ dir }));

/**
 * The exported model of an experiment's kind for `state`; `run` names the run folder and checkpoint it
 * came from (a panoptic run's calibrated thresholds belong to both), `runs` reads the runs it depends on.
 */
export const exportedModel = (
  e: AnyExperiment,
  state: ReadonlyMap<string, Value>,
  { dir = "", checkpoint = "", step = 0, runs = noRuns, print = () => {} }: {
    readonly dir?: string;
    readonly checkpoint?: string;
    readonly step?: number;
    readonly runs?: RunReader;
    readonly print?: (line: string) => void;
  } = {},
): Effect.Effect<ExportedModel, Failure> =>
  Effect.gen(function* () {
    const exporting = yield* kindPart(yield* bindKind(e, runs), "export", "export");
    return yield* exporting.open({ dir, checkpoint, step, state }, print);
  });
