/**
 * Reading back a run folder for eval, predict and export: its experiment and a checkpoint's state.
 *
 * The checkpoint is checked against what the model's inference graph reads, all problems at once: a
 * parameter that is missing (a file with only optimizer moments), has another dtype or shape, or holds
 * NaN / ±Infinity is an error naming the file and the tensor — never a silent fallback to the random
 * initial value. Reading takes no lock: a run being trained replaces its files atomically.
 */
import { Data, Effect } from "effect";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type AnyExperiment, decodeExperiment, type Experiment } from "../dsl/experiment.ts";
import { inferenceShapes } from "../interpret/shapes.ts";
import { bindKind } from "../kinds/registry.ts";
import type { RunReader } from "../kinds/kind.ts";
import { graphStage, plan } from "../ir/plan.ts";
import { readJsonFile } from "../io/json_file.ts";
import { BEST_FILE, latestCheckpoint, loadCheckpoint, readBestRecord } from "./checkpoint.ts";
import { CHECKPOINTS } from "./run_folder.ts";
import { checkpointValues, type ExpectedTensor } from "./run_state.ts";
import { type Value, value } from "../ir/value.ts";

export class RunNotFound
  extends Data.TaggedError("RunNotFound")<{ readonly dir: string; readonly reason: string }> {
  override get message(): string {
    return `${this.dir}: ${this.reason}`;
  }
}

export interface LoadedRun {
  readonly dir: string;
  readonly experiment: Experiment;
  readonly checkpoint: string;
  /** Why this checkpoint: given, the best of the run's evaluations (on which image set), or the newest. */
  readonly why: string;
  readonly step: number;
  readonly state: Map<string, Value>;
}

/** The experiment a run folder holds (experiment.json, decoded and validated). */
const readRunExperiment = (dir: string) =>
  Effect.gen(function* () {
    const specFile = join(dir, "experiment.json");
    if (!existsSync(specFile)) {
      return yield* new RunNotFound({ dir, reason: "not a run folder (no experiment.json)" });
    }
    return yield* decodeExperiment(yield* readJsonFile(specFile), specFile);
  });

/**
 * Another run's experiment with no checkpoint read: what a kind needs of the runs it depends on to build
 * its inference graph (the independent scheme's ranker gives its model and crop), never their weights.
 */
const experimentOnly: RunReader = (dir) =>
  Effect.map(readRunExperiment(dir), (experiment) => ({ dir, experiment, state: new Map(), checkpoint: "" }));

/**
 * The state tensors the model's inference graph reads (the graph eval, predict and export run, as the
 * model's kind builds it), with their dtypes and shapes. An independent-scheme segmenter's graph holds its
 * ranker too (`ranker.*`), so its kind reads the ranker's experiment; when that run cannot serve (cannot be
 * read, is no ranker), nothing is required here, since binding the kind with its weights reports that
 * problem next.
 */
export const inferenceParameters = (e: AnyExperiment): Effect.Effect<ExpectedTensor[]> =>
  Effect.gen(function* () {
    const bound = yield* Effect.result(bindKind(e, experimentOnly));
    if (bound._tag === "Failure") return [];
    const g = bound.success.inferenceGraph(inferenceShapes(e, 1));
    return plan("inference", g, [graphStage(g)]).state.map(({ name, dtype, shape }) => ({
      name,
      dtype,
      shape,
    }));
  });

/** The run's experiment and the state of `checkpoint` (default: best, else the newest). */
export const loadRun = (dir: string, checkpoint?: string) =>
  Effect.gen(function* () {
    const experiment = yield* readRunExperiment(dir);
    let file = checkpoint;
    let why = "given by --checkpoint";
    if (!file) {
      const best = join(dir, CHECKPOINTS, BEST_FILE);
      const record = existsSync(best) ? yield* readBestRecord(join(dir, CHECKPOINTS)) : undefined;
      if (existsSync(best)) {
        file = best;
        why = record
          ? `the best of the run's evaluations: ${record.metric} ${
            record.value.toFixed(2)
          } at step ${record.step}`
          : "the run's best checkpoint";
      } else {
        file = (yield* latestCheckpoint(join(dir, CHECKPOINTS))).latest?.file;
        why = "the newest checkpoint (the run has no best.safetensors)";
      }
    }
    if (!file) {
      return yield* new RunNotFound({ dir, reason: "has no checkpoint yet" });
    }
    const ckpt = yield* loadCheckpoint(file);
    const state = yield* checkpointValues(ckpt, yield* inferenceParameters(experiment), "parameters");
    // Other float32 tensors (optimizer moments, parameters this graph does not read) come along as before.
    for (const [name, t] of Object.entries(ckpt.tensors)) {
      if (!state.has(name) && t.dtype === "F32") {
        state.set(name, value("float32", t.data as Float32Array, t.shape));
      }
    }
    return { dir, experiment, checkpoint: file, why, step: ckpt.step ?? 0, state } satisfies LoadedRun;
  });
