/**
 * A pool of sample Workers, as a scoped resource: started when acquired, terminated when the scope (the
 * loader stream) closes.
 */
import { Effect, type Scope } from "effect";
import type { FileError } from "./errors.ts";
import type { SampleTask, TaskResult, TaskRunner } from "./sample_task.ts";
import { errorFromData, type WorkerReply, type WorkerRequest } from "./worker_protocol.ts";

/** A task sent to a Worker and waiting for its reply. */
interface Pending {
  readonly resume: (effect: Effect.Effect<unknown, FileError>) => void;
  readonly worker: number;
}

/**
 * Starts `size` Workers and returns a task runner that sends each task to the least busy one.
 *
 * Gotcha: a task interrupted on the loader side still finishes in its Worker; its reply is dropped.
 * A crash inside a Worker is a defect (the stream dies), not a data error.
 */
export const workerPool = (size: number): Effect.Effect<TaskRunner, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() =>
        Array.from({ length: size }, () =>
          new Worker(new URL("./sample_worker.ts", import.meta.url), { type: "module" }))
      ),
      (workers) =>
        Effect.sync(() => workers.forEach((w) => w.terminate())),
    ),
    (workers) => {
      const pending = new Map<number, Pending>();
      const busy = new Int32Array(size);
      const crashed: (string | undefined)[] = Array(size).fill(undefined);
      let nextId = 0;
      workers.forEach((worker, w) => {
        worker.onmessage = (event: MessageEvent<WorkerReply>) => {
          const reply = event.data;
          const job = pending.get(reply.id);
          if (job === undefined) return;
          pending.delete(reply.id);
          busy[w]--;
          if (reply.ok) job.resume(Effect.succeed(reply.value));
          else if ("error" in reply) job.resume(Effect.fail(errorFromData(reply.error)));
          else job.resume(Effect.die(new Error(`sample worker failed: ${reply.defect}`)));
        };
        worker.onerror = (event: ErrorEvent) => {
          event.preventDefault();
          crashed[w] = event.message;
          for (const [id, job] of pending) {
            if (job.worker !== w) continue;
            pending.delete(id);
            job.resume(Effect.die(new Error(`sample worker crashed: ${event.message}`)));
          }
        };
      });
      const run = <T extends SampleTask>(task: T) =>
        Effect.callback<TaskResult<T>, FileError>((resume, signal) => {
          let w = -1;
          for (let i = 0; i < size; i++) if (crashed[i] === undefined && (w < 0 || busy[i] < busy[w])) w = i;
          if (w < 0) return resume(Effect.die(new Error(`sample workers crashed: ${crashed[0]}`)));
          const id = nextId++;
          busy[w]++;
          pending.set(id, { resume: resume as Pending["resume"], worker: w });
          signal.addEventListener("abort", () => {
            if (pending.delete(id)) busy[w]--;
          });
          workers[w].postMessage({ id, task } satisfies WorkerRequest);
        });
      return run as TaskRunner;
    },
  );
