/** Running training in tests and reading back what a run folder holds: shared by the train, LarvSeg, panoptic and webgpu tests. */
import { Effect } from "effect";
import { readFileSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Experiment } from "../dsl/experiment.ts";
import { train, type TrainOptions } from "../train/train.ts";
import { loadCheckpoint } from "../train/checkpoint.ts";

/** Main-thread loading, no progress output, no final evaluation: what most training tests want. */
export const quiet: TrainOptions = { workers: 0, print: () => {}, skipFinalEval: true };

/** `train` with `quiet` under `options`, as an Exit. */
export const run = (e: Experiment, options: TrainOptions) =>
  Effect.runPromiseExit(train(e, { ...quiet, ...options }));

/** metrics.jsonl without the wall-clock fields, which are the only values allowed to differ. */
export const metrics = (dir: string) =>
  readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => {
    const { imagesPerSecond: _a, elapsedSeconds: _b, ...rest } = JSON.parse(l);
    return rest;
  });

/** The tensors of the run's newest step checkpoint. */
export const finalState = async (dir: string) => {
  const files = (await readdir(join(dir, "checkpoints"))).filter((f) => f.startsWith("step-")).sort();
  return (await Effect.runPromise(loadCheckpoint(join(dir, "checkpoints", files.at(-1)!)))).tensors;
};
