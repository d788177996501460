/**
 * A pool of sample Workers, as a scoped resource: started when acquired, terminated when the scope (the
 * loader stream) closes.
 */
import { Effect, type Scope } from "effect";
import type { SampleTask, TaskResult, TaskRunner } from "./sample_task.ts";
import { errorFromData, type WorkerReply, type WorkerRequest } from "./worker_protocol.ts";

interface Pending {
  readonly resume: (
    effect: Effect.Effect<never, never> | Effect.Effect<unknown, ReturnType<typeof errorFromData>>,
  ) => void;
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
      let nextId = 0;
      workers.forEach((worker, w) => {
        worker.onmessage = (event: MessageEvent<WorkerReply>) => {
          const reply = event.data;
          const job = pending.get(reply.id);
          if (job === undefined) return;
          pending.delete(reply.id);
          busy[w]--;
          if (reply.ok) job.resume(Effect.succeed(reply.value) as never);
          else if ("error" in reply) job.resume(Effect.fail(errorFromData(reply.error)));
          else job.resume(Effect.die(new Error(`sample worker failed: ${reply.defect}`)));
        };
        worker.onerror = (event: ErrorEvent) => {
          event.preventDefault();
          for (const [id, job] of pending) {
            if (job.worker !== w) continue;
            pending.delete(id);
            job.resume(Effect.die(new Error(`sample worker crashed: ${event.message}`)));
          }
          busy[w] = 0;
        };
      });
      const run = <T extends SampleTask>(task: T) =>
        Effect.callback<TaskResult<T>, ReturnType<typeof errorFromData>>((resume, signal) => {
          const id = nextId++;
          let w = 0;
          for (let i = 1; i < size; i++) if (busy[i] < busy[w]) w = i;
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
