/**
 * `predict`, for every model kind: what a kind's prediction gives (`Prediction`, one per kind in
 * `kinds/`), and the one loop that runs it over image files (`predictFiles`).
 *
 * The loop gives every input its own output stem (`x`, `x-2`, … for inputs that share a file name), and
 * rewrites the kind's summary file (`predictions.json`, `panoptic.json`, …) atomically after each image,
 * so that the summary always lists exactly the images whose outputs are written. Ctrl-C finishes the
 * image in progress, and stops with one line saying how many were done.
 */
import { Data, Effect, type Scope } from "effect";
import { mkdir } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { writeFileAtomic } from "../io/atomic_write.ts";
import type { RuntimeOptions } from "../runtime/execute.ts";
import type { Value } from "../ir/value.ts";
import type { Failure } from "./evaluation.ts";

/** A run's checkpoint, read back. */
export interface RunState {
  readonly dir: string;
  readonly checkpoint: string;
  readonly step: number;
  readonly state: ReadonlyMap<string, Value>;
}

export interface PredictRequest extends RuntimeOptions {
  /** Predict as the exported model is used (`eval/export_size.ts`): fit into the crop size, pad to it. */
  readonly exportSize: boolean;
  /** Progress and notes, one line each. */
  readonly print: (line: string) => void;
}

/** One image's prediction: its entry in the summary file and the line to print. */
export interface ImageResult {
  readonly entry: unknown;
  readonly line: string;
}

/** A kind's predictor, opened on one run and output folder. */
export interface ImagePredictor {
  /** Predicts one image file and writes its outputs into the output folder, named after `stem`. */
  predict(file: string, stem: string): Effect.Effect<ImageResult, Failure>;
  /** The summary file (its name in the output folder) and its JSON for the images done so far. */
  summary(entries: readonly unknown[]): { readonly name: string; readonly json: unknown };
}

/** A model kind's prediction. */
export interface Prediction {
  open(
    run: RunState,
    out: string,
    request: PredictRequest,
  ): Effect.Effect<ImagePredictor, Failure, Scope.Scope>;
}

/** `predict` stopped on request (Ctrl-C or `stopAfter`) after writing the summary of the images done. */
export class PredictionStopped extends Data.TaggedError("PredictionStopped")<{
  readonly done: number;
  readonly total: number;
  readonly summary: string;
}> {
  override get message(): string {
    return `predict: stopped after ${this.done} of ${this.total} images; ${this.summary} lists them`;
  }
}

/** A file could not be written. */
export class PredictionWriteError
  extends Data.TaggedError("PredictionWriteError")<{ readonly file: string; readonly message: string }> {}

/**
 * The output stem of each input: its file name without extension; a later input whose stem is taken (by
 * an earlier input, or as `x-2` by a numbered one) gets the first free `<stem>-<n>`, n = 2, 3, ….
 */
export const outputStems = (files: readonly string[]): string[] => {
  const taken = new Set<string>();
  return files.map((file) => {
    const stem = basename(file, extname(file));
    let name = stem;
    for (let n = 2; taken.has(name); n++) name = `${stem}-${n}`;
    taken.add(name);
    return name;
  });
};

export interface PredictFilesOptions {
  readonly print: (line: string) => void;
  /** Stop after this many images (as Ctrl-C would). */
  readonly stopAfter?: number;
}

/** Predicts `files` in order into `out`; returns the summary file's path. */
export const predictFiles = (
  predictor: ImagePredictor,
  files: readonly string[],
  out: string,
  { print, stopAfter }: PredictFilesOptions,
) =>
  Effect.scoped(Effect.gen(function* () {
    let stopRequested = false;
    const onSignal = () => (stopRequested = true);
    yield* Effect.acquireRelease(
      Effect.sync(() => Deno.addSignalListener("SIGINT", onSignal)),
      () => Effect.sync(() => Deno.removeSignalListener("SIGINT", onSignal)),
    );
    yield* Effect.tryPromise({
      try: () => mkdir(out, { recursive: true }),
      catch: (e) => new PredictionWriteError({ file: out, message: `cannot create: ${e}` }),
    });
    const writeSummary = (entries: readonly unknown[]) =>
      Effect.gen(function* () {
        const { name, json } = predictor.summary(entries);
        const file = join(out, name);
        yield* writeFileAtomic(file, JSON.stringify(json, null, 2) + "\n").pipe(
          Effect.mapError((e) => new PredictionWriteError({ file, message: e.message })),
        );
        return file;
      });
    const stems = outputStems(files);
    const entries: unknown[] = [];
    let summary = "";
    for (const [i, file] of files.entries()) {
      const { entry, line } = yield* predictor.predict(file, stems[i]);
      entries.push(entry);
      summary = yield* writeSummary(entries);
      print(line);
      const done = i + 1;
      if (done < files.length && (stopRequested || done === stopAfter)) {
        return yield* new PredictionStopped({ done, total: files.length, summary });
      }
    }
    if (files.length === 0) summary = yield* writeSummary(entries);
    print(`wrote ${summary}`);
    return summary;
  }));
