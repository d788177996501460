/**
 * Which merging thresholds a panoptic run's checkpoint predicts and exports with: the spec's, or the
 * class thresholds an evaluation of that very checkpoint calibrated on the training split.
 */
import { Effect } from "effect";
import type { ExperimentOf } from "../dsl/experiment.ts";
import type { MergeThresholds, PanopticSegmenter } from "../dsl/model.ts";
import { calibratedMerge } from "../eval/panoptic_eval.ts";
import type { JsonFileError } from "../io/json_file.ts";
import type { RunState } from "../eval/prediction.ts";
import { parametersDigest } from "../eval/parameters_digest.ts";

/**
 * The merge thresholds for a run's checkpoint (`calibratedMerge`: a calibration belongs to the weights it
 * was chosen on), and a line saying where they come from when the spec calibrates.
 */
export const checkpointMerge = (
  e: ExperimentOf<PanopticSegmenter>,
  run: RunState,
  print: (line: string) => void,
): Effect.Effect<MergeThresholds, JsonFileError> =>
  Effect.gen(function* () {
    const { merge, from } = yield* calibratedMerge(run.dir, e, parametersDigest(run.state));
    if (e.model.mergeCalibration) {
      print(
        from
          ? `merging with class thresholds thing ${merge.thingThreshold} / stuff ${merge.stuffThreshold} ` +
            `(chosen on ${e.data.dataset.trainSplit} for this checkpoint: ${from})`
          : `no evaluation of this checkpoint (${run.checkpoint}) with a calibration in ${run.dir}: merging ` +
            `with the spec's thresholds (eval the checkpoint to calibrate them)`,
      );
    }
    return merge;
  });
