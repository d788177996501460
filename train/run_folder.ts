/**
 * The run folder: `runs/<experiment-name>-<spec-hash-8>/` (or `--out`) with
 *
 *   experiment.json   the canonical experiment spec (what was run)
 *   meta.json         code commit, seed, Deno / ONNX Runtime / Effect versions, start time, provider, threads
 *   metrics.jsonl     one JSON line per logged step and per evaluation
 *   checkpoints/      safetensors: parameters, optimizer state, loader position (last N, plus best)
 *   train.log         human-readable log
 *   feature-cache.json  with a frozen backbone's feature cache: its folder, key, size and build time
 *   eval-<split>.json, examples/, report.html
 */
import { Data, Effect } from "effect";
import { existsSync, readFileSync } from "node:fs";
import { appendFile, mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { type AnyExperiment, experimentHash, experimentJson } from "../dsl/experiment.ts";
import { writeFileAtomic } from "../io/atomic_write.ts";
import { type JsonFileError, parseJsonLines, readJsonFile } from "../io/json_file.ts";
import { onnxRuntimeVersion } from "../runtime/execute.ts";
import { specDiff } from "./spec_diff.ts";

/** A run folder that cannot be used as asked (exists without --resume, or holds another experiment). */
export class RunFolderError
  extends Data.TaggedError("RunFolderError")<{ readonly dir: string; readonly reason: string }> {
  override get message(): string {
    return `${this.dir}: ${this.reason}`;
  }
}

export const CHECKPOINTS = "checkpoints", METRICS = "metrics.jsonl", LOG = "train.log", EXAMPLES = "examples";
/** With a frozen backbone's feature cache: which one the run reads (dir, key, size, who built it). */
export const FEATURE_CACHE_RECORD = "feature-cache.json";

/** `runs/<name>-<hash8>` unless `out` is given. */
export const runDirFor = (e: AnyExperiment, out?: string): string =>
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
  /** Processes that trained the run (data-parallel ranks; 1 for an ordinary run). */
  readonly ranks: number;
  readonly versions: Record<string, string | undefined>;
}

export const runMeta = (
  e: AnyExperiment,
  provider: string,
  threads: number | undefined,
  ranks = 1,
): RunMeta => ({
  commit: git("rev-parse", "HEAD") ?? "unknown",
  dirty: (git("status", "--porcelain") ?? "") !== "",
  seed: e.train.seed,
  specHash: experimentHash(e),
  startedAt: new Date().toISOString(),
  provider,
  threads: threads ?? null,
  ranks,
  versions: {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    onnxruntime: onnxRuntimeVersion(),
    effect: dependencyVersion("effect"),
    sharp: dependencyVersion("sharp"),
  },
});

const io = (dir: string, doing: string) => (e: unknown) =>
  new RunFolderError({ dir, reason: `${doing}: ${e instanceof Error ? e.message : String(e)}` });

export interface RunFolderOptions {
  readonly resume: boolean;
  /** Resuming may change `train.steps` (and only it): `--extend-steps`. */
  readonly extend?: boolean;
}

/** The experiment a run folder holds, as JSON, or undefined when it holds none. */
export const readRunSpec = (dir: string): Effect.Effect<unknown, JsonFileError> => {
  const specFile = join(dir, "experiment.json");
  return existsSync(specFile) ? readJsonFile(specFile) : Effect.succeed(undefined);
};

/**
 * Checks, writing nothing, that the folder can take this run: a fresh run needs a folder without
 * checkpoints; a resumed run needs the same experiment (each differing field is named, old → new).
 */
export const checkRunFolder = (
  dir: string,
  e: AnyExperiment,
  { resume, extend = false }: RunFolderOptions,
): Effect.Effect<void, RunFolderError | JsonFileError> =>
  Effect.gen(function* () {
    const hasCheckpoints = existsSync(join(dir, CHECKPOINTS)) &&
      (yield* Effect.tryPromise({
        try: () => readdir(join(dir, CHECKPOINTS)),
        catch: io(dir, "cannot list"),
      }))
        .some((f) => f.endsWith(".safetensors"));
    if (resume) {
      const saved = yield* readRunSpec(dir);
      if (saved === undefined) {
        return yield* new RunFolderError({ dir, reason: "nothing to resume: no experiment.json" });
      }
      const changes = specDiff(saved, JSON.parse(experimentJson(e)))
        .filter((c) => !(extend && c.startsWith("train.steps: ")));
      if (changes.length) {
        const onlySteps = changes.length === 1 && changes[0].startsWith("train.steps: ");
        return yield* new RunFolderError({
          dir,
          reason: `the experiment changed since this run started: ${changes.join("; ")}; ${
            onlySteps
              ? "to continue this run to another step count use --extend-steps N"
              : "start a new run with --out"
          }`,
        });
      }
    } else if (hasCheckpoints) {
      return yield* new RunFolderError({
        dir,
        reason:
          "already holds a run with checkpoints; pass --resume to continue it or --out DIR to start elsewhere",
      });
    }
  });

/**
 * Prepares the folder: a fresh run writes experiment.json and meta.json; a resumed run checks that the
 * folder holds the same experiment and records the resumption in meta.json (an extended run also
 * rewrites experiment.json with its new step count and records the change). Called only once the
 * execution sessions have opened, so a run that cannot start leaves no folder behind.
 */
export const prepareRunFolder = (
  dir: string,
  e: AnyExperiment,
  { resume, extend = false, provider, threads, ranks = 1 }: RunFolderOptions & {
    provider: string;
    threads?: number;
    /** Processes of a data-parallel run (1: an ordinary run). */
    ranks?: number;
  },
): Effect.Effect<void, RunFolderError | JsonFileError> =>
  Effect.gen(function* () {
    yield* checkRunFolder(dir, e, { resume, extend });
    const specFile = join(dir, "experiment.json");
    const saved = resume ? yield* readRunSpec(dir) : undefined;
    const savedSteps = (saved as { train?: { steps?: number } } | undefined)?.train?.steps;
    yield* Effect.tryPromise({
      try: () => mkdir(join(dir, CHECKPOINTS), { recursive: true }),
      catch: io(dir, "cannot create"),
    });
    const write = (file: string, text: string) =>
      writeFileAtomic(file, text).pipe(
        Effect.mapError((err) => new RunFolderError({ dir, reason: err.message })),
      );
    const meta = runMeta(e, provider, threads, ranks);
    const metaFile = join(dir, "meta.json");
    if (resume && existsSync(metaFile)) {
      const previous = (yield* readJsonFile(metaFile)) as { resumed?: unknown[] };
      const extended = savedSteps !== undefined && savedSteps !== e.train.steps;
      const resumed = [...(previous.resumed ?? []), {
        at: meta.startedAt,
        commit: meta.commit,
        provider,
        threads: meta.threads,
        ranks,
        ...(extended ? { steps: { from: savedSteps, to: e.train.steps }, specHash: meta.specHash } : {}),
      }];
      if (extended) yield* write(specFile, experimentJson(e) + "\n");
      yield* write(metaFile, JSON.stringify({ ...previous, resumed }, null, 2) + "\n");
      return;
    }
    yield* write(specFile, experimentJson(e) + "\n");
    yield* write(metaFile, JSON.stringify(meta, null, 2) + "\n");
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
 * Drops metrics.jsonl lines logged after `step` (0 when the run had no checkpoint yet): a run killed
 * after logging past its last checkpoint relogs those steps when resumed, and must not log them twice.
 * A torn last line (an append cut off by a full disk or a kill) is cut too; the returned lines say so.
 * Any other line that is not JSON is an error naming `metrics.jsonl:<line>`.
 */
export const truncateMetrics = (
  dir: string,
  step: number,
): Effect.Effect<string[], RunFolderError | JsonFileError> =>
  Effect.gen(function* () {
    const file = join(dir, METRICS);
    if (!existsSync(file)) return [];
    const text = yield* Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: io(dir, "cannot read metrics"),
    });
    const { values, tornTail } = yield* parseJsonLines(text, file);
    const kept = values.filter(({ value }) => ((value as { step?: number } | null)?.step ?? 0) <= step);
    const said = tornTail
      ? [
        `${file}:${tornTail.line}: cut a torn last line of ${
          new TextEncoder().encode(tornTail.text).length
        } bytes (an append that did not finish, e.g. on a full disk)`,
      ]
      : [];
    const rewritten = kept.map((l) => l.text + "\n").join("");
    if (rewritten !== text) {
      yield* writeFileAtomic(file, rewritten).pipe(
        Effect.mapError((err) => new RunFolderError({ dir, reason: err.message })),
      );
    }
    return said;
  });
