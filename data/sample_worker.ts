/**
 * Worker entry point: runs sample tasks (decode + augment) off the main thread.
 *
 * Why: a training step's `session.run` blocks the main thread. libvips decodes on its own threads, but
 * everything after decoding (label mapping, crop, flip, photometric distortion, normalization) is
 * JavaScript and would wait for the step. A Worker re-opens the dataset from the task's spec once, then
 * answers `{ id, task }` messages with the processed sample, transferring its buffers.
 */
import { Effect, Result } from "effect";
import type { Dataset } from "./dataset.ts";
import type { DataError } from "./errors.ts";
import { openDataset } from "./open.ts";
import { type DatasetSource, runTask, type SampleTask } from "./sample_task.ts";
import { transferList, type WorkerReply, type WorkerRequest } from "./worker_protocol.ts";

interface Port {
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerReply, transfer: Transferable[]): void;
}
const port = globalThis as unknown as Port;

const opened = new Map<string, Promise<Result.Result<Dataset, DataError>>>();

/** The dataset of a task, opened once per distinct source. */
const datasetOf = (source: DatasetSource) => {
  const key = JSON.stringify(source);
  let dataset = opened.get(key);
  if (dataset === undefined) {
    dataset = Effect.runPromise(Effect.result(openDataset(source.spec, source.split, source.specFile)));
    opened.set(key, dataset);
  }
  return dataset;
};

const handle = async (id: number, task: SampleTask): Promise<void> => {
  try {
    const dataset = await datasetOf(task.source);
    const result = Result.isSuccess(dataset)
      ? await Effect.runPromise(Effect.result(runTask(dataset.success, task)))
      : Result.fail(dataset.failure);
    if (Result.isSuccess(result)) {
      port.postMessage({ id, ok: true, value: result.success }, transferList(result.success));
    } else {
      const { _tag, file, message } = result.failure;
      port.postMessage({ id, ok: false, error: { _tag, file, message } }, []);
    }
  } catch (e) {
    port.postMessage({ id, ok: false, defect: e instanceof Error ? e.stack ?? e.message : String(e) }, []);
  }
};

port.onmessage = (event) => void handle(event.data.id, event.data.task);
