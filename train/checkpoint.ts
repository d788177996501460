/**
 * The checkpoint store of a run: `<run>/checkpoints/step-000100.safetensors`, ...
 *
 * - `saveCheckpoint` writes a step's tensors atomically, keeps the newest `keepLast` complete step files
 *   (a truncated or corrupt one is moved aside to `<name>.corrupt`, never kept in place of a good one),
 *   and refreshes `best.safetensors` when the tracked metric improves on the one recorded in it.
 * - `latestCheckpoint` finds the newest step file whose header and size check out, reporting (not
 *   deleting) temp files of interrupted writes and truncated or corrupt files it passed over.
 * - `loadCheckpoint` reads one file back.
 *
 * Metadata values are JSON texts (the safetensors format allows only strings): the trainer stores e.g.
 * `optimizer`, `loader` ({epoch, index}), `rng`, `spec_hash`. The store adds `checkpoint.step` and, in
 * best.safetensors, `checkpoint.best` = {"metric", "value", "step"}.
 */
import { Data, Effect, Schema } from "effect";
import { existsSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { isTempFileName, writeFileAtomic } from "../io/atomic_write.ts";
import {
  decodeHeaderLength,
  decodeSafetensors,
  decodeSafetensorsHeader,
  encodeSafetensors,
  type SafetensorsHeader,
  type Tensor,
} from "../io/safetensors.ts";

export class CheckpointError extends Data.TaggedError("CheckpointError")<{
  readonly file: string;
  readonly message: string;
}> {}

export interface CheckpointContents {
  readonly tensors: Readonly<Record<string, Tensor>>;
  /** JSON texts keyed by name. */
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface LoadedCheckpoint {
  readonly file: string;
  /** From `checkpoint.step`; undefined for files not written by the store. */
  readonly step: number | undefined;
  readonly tensors: Readonly<Record<string, Tensor>>;
  readonly metadata: Readonly<Record<string, string>>;
}

export interface BestRecord {
  readonly metric: string;
  readonly value: number;
  readonly step: number;
}

export interface SaveOptions {
  /** How many step files to keep, newest by step (default 3; the file just written is always kept). */
  readonly keepLast?: number;
  /** The metric of this step; best.safetensors is replaced when it improves. */
  readonly best?: { readonly metric: string; readonly value: number; readonly higherIsBetter?: boolean };
}

export interface SavedCheckpoint {
  readonly file: string;
  readonly step: number;
  /** best.safetensors path when this save replaced it. */
  readonly bestFile: string | undefined;
  /** The record that was in best.safetensors before this save, if any could be read. */
  readonly previousBest: BestRecord | undefined;
  readonly pruned: readonly string[];
  /** Step files that failed their header check, moved aside to `<file>.corrupt`. */
  readonly movedAside: readonly SkippedCheckpoint[];
}

export interface SkippedCheckpoint {
  readonly file: string;
  readonly reason: string;
}

export interface LatestCheckpoint {
  /** The newest complete step file, or undefined if there is none (a fresh run). */
  readonly latest: { readonly file: string; readonly step: number } | undefined;
  readonly skipped: readonly SkippedCheckpoint[];
}

export const STEP_KEY = "checkpoint.step";
/** What a step file that fails its check is renamed to: kept for a look, out of rotation and resume. */
export const CORRUPT_SUFFIX = ".corrupt";
export const BEST_KEY = "checkpoint.best";
export const BEST_FILE = "best.safetensors";
const STEP_FILE = /^step-(\d{6,})\.safetensors$/;

/** `step-000100.safetensors` (six digits, more when the step needs them). */
export const checkpointFileName = (step: number): string =>
  `step-${String(step).padStart(6, "0")}.safetensors`;

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause));
const checkpointError = (file: string, problem: string) =>
  new CheckpointError({ file, message: `${file}: ${problem}` });
const ioError = (file: string, doing: string) => (cause: unknown) =>
  checkpointError(file, `${doing}: ${describe(cause)}`);

const BestRecordSchema = Schema.Struct({
  metric: Schema.String,
  value: Schema.Number,
  step: Schema.Number.check(Schema.isInt()),
});
const StepSchema = Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0));

/**
 * Decodes the JSON text stored under `key` with `schema`; fails naming the file and key when the key is
 * missing, the text is not JSON, or the value does not match.
 */
export const decodeMetadataJson = <S extends Schema.Codec<unknown, unknown>>(
  metadata: Readonly<Record<string, string>>,
  key: string,
  schema: S,
  file: string,
): Effect.Effect<S["Type"], CheckpointError> => {
  if (!Object.hasOwn(metadata, key)) return Effect.fail(checkpointError(file, `metadata has no "${key}"`));
  let json: unknown;
  try {
    json = JSON.parse(metadata[key]);
  } catch (e) {
    return Effect.fail(checkpointError(file, `metadata "${key}" is not JSON (${describe(e)})`));
  }
  return Schema.decodeUnknownEffect(schema)(json).pipe(
    Effect.mapError((e) =>
      checkpointError(file, `metadata "${key}" is invalid: ${e.message.replace(/\s*\n\s*/g, " ")}`)
    ),
  ) as Effect.Effect<S["Type"], CheckpointError>;
};

/** Reads and validates only the header of a safetensors file (and checks the file is not truncated). */
export const readCheckpointHeader = (file: string): Effect.Effect<SafetensorsHeader, CheckpointError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const handle = yield* Effect.acquireRelease(
        Effect.tryPromise({ try: () => open(file, "r"), catch: ioError(file, "cannot open") }),
        (h) => Effect.promise(() => h.close().catch(() => undefined)),
      );
      const { size } = yield* Effect.tryPromise({
        try: () => handle.stat(),
        catch: ioError(file, "cannot stat"),
      });
      const read = (length: number) =>
        Effect.tryPromise({
          try: async () => {
            const buffer = new Uint8Array(length);
            const { bytesRead } = await handle.read(buffer, 0, length, 0);
            return buffer.subarray(0, bytesRead);
          },
          catch: ioError(file, "cannot read"),
        });
      const toCheckpointError = Effect.mapError((e: { message: string }) =>
        new CheckpointError({ file, message: e.message })
      );
      const prefix = yield* read(Math.min(8, size));
      const headerLength = yield* decodeHeaderLength(prefix, size, file).pipe(toCheckpointError);
      const headerBytes = yield* read(8 + headerLength);
      return yield* decodeSafetensorsHeader(headerBytes, size, file).pipe(toCheckpointError);
    }),
  );

/** Reads a checkpoint file completely. */
export const loadCheckpoint = (file: string): Effect.Effect<LoadedCheckpoint, CheckpointError> =>
  Effect.gen(function* () {
    const bytes = yield* Effect.tryPromise({
      try: () => readFile(file),
      catch: ioError(file, "cannot read"),
    });
    const { tensors, metadata } = yield* decodeSafetensors(
      new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length),
      file,
    )
      .pipe(Effect.mapError((e) => new CheckpointError({ file, message: e.message })));
    const step = Object.hasOwn(metadata, STEP_KEY)
      ? yield* decodeMetadataJson(metadata, STEP_KEY, StepSchema, file)
      : undefined;
    return { file, step, tensors, metadata };
  });

/** The record in `<dir>/best.safetensors`, or undefined when there is none or it cannot be read. */
export const readBestRecord = (dir: string): Effect.Effect<BestRecord | undefined> => {
  const file = join(dir, BEST_FILE);
  return readCheckpointHeader(file).pipe(
    Effect.flatMap((header) => decodeMetadataJson(header.metadata, BEST_KEY, BestRecordSchema, file)),
    Effect.orElseSucceed(() => undefined),
  );
};

const listDirectory = (dir: string): Effect.Effect<string[], CheckpointError> =>
  Effect.tryPromise({
    try: () =>
      readdir(dir).catch((e) => {
        if ((e as { code?: string }).code === "ENOENT") return [] as string[];
        throw e;
      }),
    catch: ioError(dir, "cannot list directory"),
  });

const stepFiles = (names: readonly string[]) =>
  names.flatMap((name) => {
    const m = STEP_FILE.exec(name);
    return m ? [{ name, step: Number(m[1]) }] : [];
  }).sort((a, b) => a.step - b.step);

const improves = (
  value: number,
  previous: BestRecord | undefined,
  metric: string,
  higherIsBetter: boolean,
) => {
  if (Number.isNaN(value)) return false;
  // A best recorded for another metric is not comparable; the new metric takes over.
  if (previous === undefined || previous.metric !== metric) return true;
  return higherIsBetter ? value > previous.value : value < previous.value;
};

export const saveCheckpoint = (
  dir: string,
  step: number,
  { tensors, metadata = {} }: CheckpointContents,
  { keepLast = 3, best }: SaveOptions = {},
): Effect.Effect<SavedCheckpoint, CheckpointError> =>
  Effect.gen(function* () {
    const file = join(dir, checkpointFileName(step));
    if (!Number.isInteger(step) || step < 0) {
      return yield* Effect.fail(checkpointError(file, `step must be a non-negative integer, got ${step}`));
    }
    if (!Number.isInteger(keepLast) || keepLast < 1) {
      return yield* Effect.fail(
        checkpointError(file, `keepLast must be a positive integer, got ${keepLast}`),
      );
    }
    for (const [key, value] of Object.entries(metadata)) {
      if (key === STEP_KEY || key === BEST_KEY) {
        return yield* Effect.fail(checkpointError(file, `metadata key "${key}" is reserved for the store`));
      }
      try {
        JSON.parse(value);
      } catch (e) {
        return yield* Effect.fail(
          checkpointError(file, `metadata "${key}" is not JSON text (${describe(e)})`),
        );
      }
    }
    const stepMetadata = { ...metadata, [STEP_KEY]: JSON.stringify(step) };
    const encode = (meta: Record<string, string>) =>
      Effect.try({
        try: () => encodeSafetensors(tensors, meta),
        catch: (e) => checkpointError(file, describe(e)),
      });
    const bytes = yield* encode(stepMetadata);
    yield* Effect.tryPromise({
      try: () => mkdir(dir, { recursive: true }),
      catch: ioError(dir, "cannot create"),
    });
    yield* writeFileAtomic(file, bytes).pipe(
      Effect.mapError((e) => new CheckpointError({ file: e.file, message: e.message })),
    );

    let bestFile: string | undefined;
    let previousBest: BestRecord | undefined;
    if (best !== undefined) {
      previousBest = yield* readBestRecord(dir);
      if (improves(best.value, previousBest, best.metric, best.higherIsBetter ?? true)) {
        bestFile = join(dir, BEST_FILE);
        const record: BestRecord = { metric: best.metric, value: best.value, step };
        const bestBytes = yield* encode({ ...stepMetadata, [BEST_KEY]: JSON.stringify(record) });
        yield* writeFileAtomic(bestFile, bestBytes).pipe(
          Effect.mapError((e) => new CheckpointError({ file: e.file, message: e.message })),
        );
      }
    }

    // Rotation counts complete files only: a truncated or corrupt one is moved aside, so that it never
    // takes the place of a good older checkpoint among the last `keepLast`.
    const good: { name: string; step: number }[] = [];
    const movedAside: SkippedCheckpoint[] = [];
    for (const f of stepFiles(yield* listDirectory(dir))) {
      const checked = f.step === step
        ? undefined
        : yield* Effect.result(readCheckpointHeader(join(dir, f.name)));
      if (checked?._tag !== "Failure") good.push(f);
      else if (existsSync(join(dir, f.name))) {
        movedAside.push(yield* setAside(join(dir, f.name), checked.failure.message));
      }
    }
    const kept = new Set(good.slice(-keepLast).map((f) => f.name));
    kept.add(checkpointFileName(step));
    const pruned: string[] = [];
    for (const { name } of good) {
      if (kept.has(name)) continue;
      const path = join(dir, name);
      yield* Effect.tryPromise({
        try: () => rm(path, { force: true }),
        catch: ioError(path, "cannot prune"),
      });
      pruned.push(path);
    }
    return { file, step, bestFile, previousBest, pruned, movedAside };
  });

/** Renames a step file that failed its check to `<file>.corrupt`; `reason` is what the check said. */
export const setAside = (file: string, reason: string): Effect.Effect<SkippedCheckpoint, CheckpointError> =>
  Effect.tryPromise({
    try: () => rename(file, file + CORRUPT_SUFFIX),
    catch: ioError(file, "cannot move aside"),
  }).pipe(Effect.as({ file, reason }));

/** `<reason>; moved aside to step-000006.safetensors.corrupt`: the line that says a file was set aside. */
export const movedAsideLine = ({ file, reason }: SkippedCheckpoint): string =>
  `${reason.startsWith(file) ? reason : `${file}: ${reason}`}; moved aside to ${
    basename(file)
  }${CORRUPT_SUFFIX}`;

/** The newest complete step file in `dir`, and the files passed over on the way. */
export const latestCheckpoint = (dir: string): Effect.Effect<LatestCheckpoint, CheckpointError> =>
  Effect.gen(function* () {
    const names = yield* listDirectory(dir);
    const skipped: SkippedCheckpoint[] = names.filter(isTempFileName).sort().map((name) => ({
      file: join(dir, name),
      reason: "temporary file of an interrupted write",
    }));
    let latest: LatestCheckpoint["latest"];
    for (const { name, step } of stepFiles(names).reverse()) {
      const file = join(dir, name);
      const checked = yield* Effect.result(readCheckpointHeader(file));
      if (checked._tag === "Failure") skipped.push({ file, reason: checked.failure.message });
      else if (latest === undefined) latest = { file, step };
    }
    return { latest, skipped };
  });
