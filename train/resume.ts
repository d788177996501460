/**
 * Resuming a run from its folder (`--resume`, `--extend-steps`), under the folder's lock: first repair
 * what a killed or crashed run left behind, then restore the newest usable checkpoint, then cut
 * metrics.jsonl back to the restored step. Each repair is said in one line (`said`; the trainer prints
 * and logs them):
 *
 * - temp files of interrupted atomic writes (`*.tmp-<pid>-<hex>`) are removed: every one of the
 *   trainer's own files (checkpoints, meta.json, metrics.jsonl, experiment.json, report.html) since the
 *   lock says no other train writes here, and others (an eval record) only when the process that was
 *   writing it is gone, so an `eval` writing its record right now keeps its file;
 * - a step file that fails its check (truncated, corrupt header) is moved aside to `<file>.corrupt` and
 *   the run continues from the newest good one;
 * - metrics.jsonl loses the lines logged after the restored step (all train lines when there was no
 *   checkpoint yet: they are logged again) and a torn last line.
 */
import { Effect } from "effect";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { isTempFileName } from "../io/atomic_write.ts";
import type { Value } from "../ir/value.ts";
import { latestCheckpoint, loadCheckpoint, movedAsideLine, setAside } from "./checkpoint.ts";
import { type LoopState, restoreState } from "./run_state.ts";
import { CHECKPOINTS, METRICS, RunFolderError, truncateMetrics } from "./run_folder.ts";
import { isRunning } from "./run_lock.ts";

export interface Resumed {
  /** The restored step; 0 when the folder had no usable checkpoint. */
  readonly step: number;
  /** The checkpoint restored from, if any. */
  readonly checkpoint: string | undefined;
  /** The loop state it recorded (loader position, logging interval, elapsed time). */
  readonly loop: LoopState | undefined;
  /** One line per repair made, to print and log. */
  readonly said: readonly string[];
}

/** Files only a train writes (atomically), so under the lock any temp file of theirs is a leftover. */
const TRAINER_FILES = new Set(["experiment.json", "meta.json", METRICS, "report.html"]);

/** The writer's PID in `<name>.tmp-<pid>-<hex>`. */
const writerPid = (name: string) => Number(/\.tmp-(\d+)-[0-9a-f]+$/.exec(name)?.[1]);

const list = (dir: string) =>
  Effect.tryPromise({
    try: () =>
      readdir(dir).catch((e) => ((e as { code?: string }).code === "ENOENT" ? [] : Promise.reject(e))),
    catch: (e) => new RunFolderError({ dir, reason: `cannot list: ${e instanceof Error ? e.message : e}` }),
  });

/**
 * Removes the temp files interrupted writes left in the run folder and its checkpoints; returns the line
 * that says how many (undefined when there were none).
 */
export const removeTempFiles = (dir: string): Effect.Effect<string | undefined, RunFolderError> =>
  Effect.gen(function* () {
    const candidates = [
      ...(yield* list(dir)).filter(isTempFileName).map((name) => ({
        name,
        mine: TRAINER_FILES.has(name.replace(/\.tmp-\d+-[0-9a-f]+$/, "")),
      })),
      ...(yield* list(join(dir, CHECKPOINTS))).filter(isTempFileName).map((name) => ({
        name: join(CHECKPOINTS, name),
        mine: true,
      })),
    ];
    const removed: string[] = [];
    for (const { name, mine } of candidates) {
      const pid = writerPid(name);
      if (!mine && (pid === process.pid || isRunning(pid))) continue;
      yield* Effect.tryPromise({
        try: () => rm(join(dir, name), { force: true }),
        catch: (e) =>
          new RunFolderError({ dir, reason: `cannot remove ${name}: ${e instanceof Error ? e.message : e}` }),
      });
      removed.push(name);
    }
    if (removed.length === 0) return undefined;
    const shown = removed.slice(0, 3).join(", ") +
      (removed.length > 3 ? `, … (${removed.length - 3} more)` : "");
    return `${dir}: removed ${removed.length} temp file${
      removed.length === 1 ? "" : "s"
    } of interrupted writes (${shown})`;
  });

/**
 * Repairs the folder and restores `state` (parameters, optimizer moments) from its newest usable
 * checkpoint; see the module comment for what is repaired.
 */
export const resumeRun = (dir: string, state: Map<string, Value>) =>
  Effect.gen(function* () {
    const said: string[] = [];
    const temps = yield* removeTempFiles(dir);
    if (temps) said.push(temps);
    const { latest, skipped } = yield* latestCheckpoint(join(dir, CHECKPOINTS));
    for (const s of skipped) {
      if (!isTempFileName(s.file)) said.push(movedAsideLine(yield* setAside(s.file, s.reason)));
    }
    let loop: LoopState | undefined;
    if (latest) loop = yield* restoreState(state, yield* loadCheckpoint(latest.file));
    const step = latest?.step ?? 0;
    said.push(...yield* truncateMetrics(dir, step));
    return { step, checkpoint: latest?.file, loop, said } satisfies Resumed;
  });
