/**
 * The run folder: `runs/<experiment-name>-<spec-hash-8>/` (or `--out`) with
 *
 *   experiment.json   the canonical experiment spec (what was run)
 *   meta.json         code commit, seed, Deno / ONNX Runtime / Effect versions, start time, provider, threads
 *   metrics.jsonl     one JSON line per logged step and per evaluation
 *   checkpoints/      safetensors: parameters, optimizer state, loader position (last N, plus best)
 *   train.log         human-readable log
 *   eval-<split>.json, examples/, report.html
 */
import { Data, Effect } from "effect";
import * as ort from "onnxruntime-node";
import { existsSync, readFileSync } from "node:fs";
import { appendFile, mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { type Experiment, experimentHash, experimentJson } from "../dsl/experiment.ts";
import { writeFileAtomic } from "../io/atomic_write.ts";

/** A run folder that cannot be used as asked (exists without --resume, or holds another experiment). */
export class RunFolderError
  extends Data.TaggedError("RunFolderError")<{ readonly dir: string; readonly reason: string }> {
  override get message(): string {
    return `${this.dir}: ${this.reason}`;
  }
}

export const CHECKPOINTS = "checkpoints", METRICS = "metrics.jsonl", LOG = "train.log", EXAMPLES = "examples";

/** `runs/<name>-<hash8>` unless `out` is given. */
export const runDirFor = (e: Experiment, out?: string): string =>
  out ?? join("runs", `${e.name}-${experimentHash(e).slice(0, 8)}`);

const git = (...args: string[]): string | undefined => {
  try {
    return execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return undefined;
  }
};

const dependencyVersion = (name: string): string | undefined => {
  try {
    const imports = JSON.parse(readFileSync("deno.json", "utf8")).imports as Record<string, string>;
    return imports[name]?.split("@").at(-1);
  } catch {
    return undefined;
  }
};

export interface RunMeta {
  readonly commit: string;
  readonly dirty: boolean;
  readonly seed: number;
  readonly specHash: string;
  readonly startedAt: string;
  readonly provider: string;
  readonly threads: number | null;
  readonly versions: Record<string, string | undefined>;
}

export const runMeta = (e: Experiment, provider: string, threads: number | undefined): RunMeta => ({
  commit: git("rev-parse", "HEAD") ?? "unknown",
  dirty: (git("status", "--porcelain") ?? "") !== "",
  seed: e.train.seed,
  specHash: experimentHash(e),
  startedAt: new Date().toISOString(),
  provider,
  threads: threads ?? null,
  versions: {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    onnxruntime: ort.env.versions.node,
    effect: dependencyVersion("effect"),
    sharp: dependencyVersion("sharp"),
  },
});

const io = (dir: string, doing: string) => (e: unknown) =>
  new RunFolderError({ dir, reason: `${doing}: ${e instanceof Error ? e.message : String(e)}` });

/**
 * Prepares the folder: a fresh run writes experiment.json and meta.json; a resumed run checks that the
 * folder holds the same experiment and records the resumption in meta.json.
 */
export const prepareRunFolder = (
  dir: string,
  e: Experiment,
  { resume, provider, threads }: { resume: boolean; provider: string; threads?: number },
): Effect.Effect<void, RunFolderError> =>
  Effect.gen(function* () {
    const specFile = join(dir, "experiment.json");
    const hasCheckpoints = existsSync(join(dir, CHECKPOINTS)) &&
      (yield* Effect.tryPromise({
        try: () => readdir(join(dir, CHECKPOINTS)),
        catch: io(dir, "cannot list"),
      }))
        .some((f) => f.endsWith(".safetensors"));
    if (resume) {
      if (!existsSync(specFile)) {
        return yield* new RunFolderError({ dir, reason: "nothing to resume: no experiment.json" });
      }
      const text = yield* Effect.tryPromise({
        try: () => readFile(specFile, "utf8"),
        catch: io(dir, "cannot read"),
      });
      if (text.trim() !== experimentJson(e).trim()) {
        return yield* new RunFolderError({
          dir,
          reason:
            "the experiment changed since this run started (experiment.json differs); start a new run with --out",
        });
      }
    } else if (hasCheckpoints) {
      return yield* new RunFolderError({
        dir,
        reason:
          "already holds a run with checkpoints; pass --resume to continue it or --out DIR to start elsewhere",
      });
    }
    yield* Effect.tryPromise({
      try: () => mkdir(join(dir, CHECKPOINTS), { recursive: true }),
      catch: io(dir, "cannot create"),
    });
    const meta = runMeta(e, provider, threads);
    const metaFile = join(dir, "meta.json");
    if (resume && existsSync(metaFile)) {
      const previous = JSON.parse(
        yield* Effect.tryPromise({ try: () => readFile(metaFile, "utf8"), catch: io(dir, "cannot read") }),
      );
      const resumed = [...(previous.resumed ?? []), {
        at: meta.startedAt,
        commit: meta.commit,
        provider,
        threads: meta.threads,
      }];
      yield* writeFileAtomic(metaFile, JSON.stringify({ ...previous, resumed }, null, 2) + "\n").pipe(
        Effect.mapError((err) => new RunFolderError({ dir, reason: err.message })),
      );
      return;
    }
    yield* writeFileAtomic(specFile, experimentJson(e) + "\n").pipe(
      Effect.mapError((err) => new RunFolderError({ dir, reason: err.message })),
    );
    yield* writeFileAtomic(metaFile, JSON.stringify(meta, null, 2) + "\n").pipe(
      Effect.mapError((err) => new RunFolderError({ dir, reason: err.message })),
    );
  });

/** Appends lines to a file in the run folder. */
export const appendLines = (
  dir: string,
  name: string,
  lines: readonly string[],
): Effect.Effect<void, RunFolderError> =>
  lines.length === 0 ? Effect.void : Effect.tryPromise({
    try: () => appendFile(join(dir, name), lines.join("\n") + "\n"),
    catch: io(dir, `cannot append to ${name}`),
  });

/**
 * Drops metrics.jsonl lines logged after `step`: a run killed after logging past its last checkpoint
 * relogs those steps when resumed, and must not log them twice.
 */
export const truncateMetrics = (dir: string, step: number): Effect.Effect<void, RunFolderError> =>
  Effect.gen(function* () {
    const file = join(dir, METRICS);
    if (!existsSync(file)) return;
    const text = yield* Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: io(dir, "cannot read metrics"),
    });
    const kept = text.split("\n").filter((line) =>
      line.trim() !== "" && (JSON.parse(line).step ?? 0) <= step
    );
    yield* writeFileAtomic(file, kept.map((l) => l + "\n").join("")).pipe(
      Effect.mapError((err) => new RunFolderError({ dir, reason: err.message })),
    );
  });
