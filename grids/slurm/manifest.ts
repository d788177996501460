/**
 * A grid's submission to Slurm, `<grid's runs>/slurm/<time>/manifest.json`: every run of the grid (spec,
 * overrides, folder, record), which array task trains which run, how each run trains (threads, Workers),
 * the command that writes the report, and the job ids once Slurm gave them. The array script stays
 * generic: task i runs `grids/main.ts task <manifest> i`, which reads its run from here. One folder per
 * submission, so a re-submission never changes what the tasks of an earlier one read.
 */
import { Data, Effect, Schema } from "effect";
import { existsSync, readdirSync, statSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

const Count = Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0));

export const ManifestRun = Schema.Struct({
  spec: Schema.String,
  steps: Schema.optional(Count),
  seed: Schema.optional(Count),
  /** `--frozen-backbone D`: train.frozenBackbone.draws for the run. */
  frozenBackbone: Schema.optional(Count),
  dir: Schema.String,
  record: Schema.String,
  /** The Slurm job that trains it: `<array job>_<task>`, this submission's or an earlier one's still queued. */
  job: Schema.optional(Schema.String),
});
export type ManifestRun = typeof ManifestRun.Type;

export const Manifest = Schema.Struct({
  /** The grid command (`ablation`, `larvseg`, `panoptic`, `runs`) and its arguments without the Slurm flags. */
  grid: Schema.String,
  args: Schema.Array(Schema.String),
  /** Where the jobs run (the repository) and the Deno that runs them. */
  cwd: Schema.String,
  deno: Schema.String,
  created: Schema.String,
  threads: Count,
  workers: Schema.optional(Count),
  /** Every run of the grid, in training order (finished ones too: `status` lists them all). */
  runs: Schema.Array(ManifestRun),
  /** Array task index → index into `runs`. */
  tasks: Schema.Array(Count),
  arrayJob: Schema.optional(Schema.String),
  reportJob: Schema.optional(Schema.String),
});
export type Manifest = typeof Manifest.Type;

export const MANIFEST = "manifest.json";

/** The manifest is missing or not one. */
export class ManifestError
  extends Data.TaggedError("ManifestError")<{ readonly file: string; readonly reason: string }> {
  override get message(): string {
    return `${this.file}: ${this.reason}`;
  }
}

/** Writes the manifest whole (temp file + rename): a task starting meanwhile reads the old or the new one. */
export const writeManifest = async (file: string, m: Manifest): Promise<void> => {
  await writeFile(`${file}.tmp`, JSON.stringify(m, null, 2) + "\n");
  await rename(`${file}.tmp`, file);
};

export const readManifest = (file: string): Effect.Effect<Manifest, ManifestError> =>
  Effect.gen(function* () {
    const fail = (reason: string) => new ManifestError({ file, reason });
    const text = yield* Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: (e) => fail(`cannot read (${e instanceof Error ? e.message : e})`),
    });
    const json = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) => fail(`not JSON (${e instanceof Error ? e.message : e})`),
    });
    return yield* Schema.decodeUnknownEffect(Manifest)(json).pipe(
      Effect.mapError((e) => fail(e.message.replace(/\s*\n\s*/g, " "))),
    );
  });

/** The folder of a grid's submissions. */
export const submissionsIn = (root: string): string => join(root, "slurm");

/** A new submission's folder name: the time, so that names sort as submissions were made. */
export const submissionName = (now = new Date()): string => now.toISOString().replace(/[:.]/g, "-");

/** The manifests of a grid's submissions, oldest first. */
export const manifestsIn = (root: string): string[] => {
  const dir = submissionsIn(root);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).sort().map((name) => join(dir, name, MANIFEST)).filter((f) => existsSync(f));
};

/**
 * The manifest `target` names: a manifest file, a submission's folder, a grid's runs folder (its newest
 * submission), or a grid's name (`ablation`, `ablation-pretrained`, `larvseg`, `panoptic`: runs/<name>;
 * a generic grid's: runs/grid-<name>). Undefined when there is none.
 */
export const resolveManifest = (target: string): string | undefined => {
  const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();
  if (existsSync(target) && !isDir(target)) return target;
  if (isDir(target) && existsSync(join(target, MANIFEST))) return join(target, MANIFEST);
  for (const root of [target, join("runs", target), join("runs", `grid-${target}`)]) {
    if (isDir(root)) {
      const newest = manifestsIn(root).at(-1);
      if (newest) return newest;
    }
  }
  return undefined;
};
