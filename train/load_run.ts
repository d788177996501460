/** Reading back a run folder for eval, predict and export: its experiment and a checkpoint's state. */
import { Data, Effect } from "effect";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeExperiment, type Experiment } from "../dsl/experiment.ts";
import { BEST_FILE, latestCheckpoint, loadCheckpoint, readBestRecord } from "./checkpoint.ts";
import { CHECKPOINTS } from "./run_folder.ts";
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

/** The run's experiment and the state of `checkpoint` (default: best, else the newest). */
export const loadRun = (dir: string, checkpoint?: string) =>
  Effect.gen(function* () {
    const specFile = join(dir, "experiment.json");
    if (!existsSync(specFile)) {
      return yield* new RunNotFound({ dir, reason: "not a run folder (no experiment.json)" });
    }
    const experiment = yield* decodeExperiment(JSON.parse(readFileSync(specFile, "utf8")), specFile);
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
    const state = new Map<string, Value>();
    for (const [name, t] of Object.entries(ckpt.tensors)) {
      state.set(name, value("float32", t.data as Float32Array, t.shape));
    }
    return { dir, experiment, checkpoint: file, why, step: ckpt.step ?? 0, state } satisfies LoadedRun;
  });
