/**
 * The novel-class diagnosis of a trained segmenter on a split (eval/novel_diagnosis.ts's statistics): stream
 * the test images, take each one's K-class logits at its input size (whole-image inference) and read them at
 * its labelled pixels, beside the classes `eval.novel` names.
 */
import { Effect, Stream } from "effect";
import type { ExperimentOf } from "../dsl/experiment.ts";
import type { Segmenter } from "../dsl/model.ts";
import type { Dataset } from "../data/dataset.ts";
import { testLoader } from "../data/loader.ts";
import { trainSize } from "../interpret/shapes.ts";
import type { RuntimeOptions } from "../runtime/execute.ts";
import type { Value } from "../ir/value.ts";
import { makePredictor } from "./predictor.ts";
import { novelMask } from "./base_novel.ts";
import { novelDiagnosisAccumulator } from "./novel_diagnosis.ts";

/** Why an experiment cannot be diagnosed (not a semantic segmenter, or no novel classes), or undefined. */
export const novelDiagnosisProblem = (
  e: { readonly model: { readonly _tag: string }; readonly eval: { readonly novel?: readonly string[] } },
): string | undefined =>
  e.model._tag !== "Segmenter"
    ? `its model is ${e.model._tag}, not a semantic segmenter`
    : !e.eval.novel || e.eval.novel.length === 0
    ? "its experiment names no novel classes (eval.novel)"
    : undefined;

export interface NovelDiagnosisOptions extends RuntimeOptions {
  /** Only the first N images. */
  readonly limit?: number;
  readonly workers?: number;
}

/** Diagnoses `e`'s novel classes with `state` on `dataset` (its test split, opened by the caller). */
export const diagnoseNovelClasses = (
  e: ExperimentOf<Segmenter>,
  state: ReadonlyMap<string, Value>,
  dataset: Dataset,
  { limit, workers, ...runtime }: NovelDiagnosisOptions = {},
) =>
  Effect.scoped(Effect.gen(function* () {
    const novel = yield* novelMask(dataset.classes.names, e.eval.novel, dataset.name);
    const predictor = yield* makePredictor(e.model, state, {
      mode: "whole",
      trainSize: trainSize(e),
      ...runtime,
    });
    const acc = novelDiagnosisAccumulator({
      classNames: dataset.classes.names,
      novel: novel ?? new Uint8Array(e.model.classes),
      ignoreIndex: dataset.classes.ignoreIndex,
    });
    let stream = testLoader(e.data.dataset, e.data.test, { split: dataset.split, workers });
    if (limit !== undefined) stream = stream.pipe(Stream.take(limit));
    yield* Stream.runForEach(stream, (batch) =>
      Effect.map(
        predictor.logits(batch.images, batch.height, batch.width),
        (logits) => acc.add(logits, batch.labels, batch.height, batch.width),
      ));
    return acc.summary();
  }));
