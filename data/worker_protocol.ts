/**
 * Messages between the loader and its sample Workers, and rebuilding typed errors from them.
 */
import {
  type DataError,
  EmptySplit,
  type FileError,
  ImageTooLarge,
  InvalidConfig,
  InvalidLabels,
  MissingMask,
  UnreadableFile,
} from "./errors.ts";
import type { ProcessedSample, TestSample } from "./pipeline.ts";
import type { SampleTask } from "./sample_task.ts";

/** Loader → Worker. */
export interface WorkerRequest {
  readonly id: number;
  readonly task: SampleTask;
}

/** A tagged error as structured-cloned data. */
export interface ErrorData {
  readonly _tag: DataError["_tag"];
  readonly file: string;
  readonly message: string;
}

/** Worker → loader: the sample, a data error, or a defect (a bug or crash in the worker). */
export type WorkerReply =
  | { readonly id: number; readonly ok: true; readonly value: ProcessedSample | TestSample }
  | { readonly id: number; readonly ok: false; readonly error: ErrorData }
  | { readonly id: number; readonly ok: false; readonly defect: string };

/**
 * The buffers of a processed sample that can be moved rather than copied.
 *
 * Gotcha: a buffer may back two arrays (a test sample's labels and original labels when not resized) and
 * must be listed once; a view over part of a larger buffer is left to be copied.
 */
export const transferList = (s: ProcessedSample | TestSample): ArrayBuffer[] => {
  const arrays: ArrayBufferView[] = [s.image, s.labels];
  if (s.imageLabels !== undefined) arrays.push(s.imageLabels);
  if ("original" in s) arrays.push(s.original.labels);
  if (s.panoptic) arrays.push(s.panoptic.segmentIds);
  const buffers = new Set<ArrayBuffer>();
  for (const a of arrays) {
    if (a.buffer instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength) {
      buffers.add(a.buffer);
    }
  }
  return [...buffers];
};

/** Rebuilds the tagged error a Worker reported (sample tasks only produce per-file errors). */
export const errorFromData = (e: ErrorData): FileError => {
  const fields = { file: e.file, message: e.message };
  switch (e._tag) {
    case "InvalidConfig":
      return new InvalidConfig(fields);
    case "UnreadableFile":
      return new UnreadableFile(fields);
    case "ImageTooLarge":
      return new ImageTooLarge(fields);
    case "MissingMask":
      return new MissingMask(fields);
    case "InvalidLabels":
      return new InvalidLabels(fields);
    case "EmptySplit":
      return new EmptySplit(fields);
    case "BadFiles":
      // Opening a dataset never produces it; kept as a per-file error rather than dropped.
      return new InvalidConfig(fields);
  }
};
