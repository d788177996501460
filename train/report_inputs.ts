/**
 * What the run report reads from a run folder, validated:
 *  - `metrics.jsonl`: one JSON object per line, `kind` "train" or "eval" (schemas below; the training
 *    loop writes these). Eval lines hold percentages (`units: "percent"`) and the image count; lines
 *    from before `units` existed held fractions and are converted on reading. A line that is not JSON or does not match fails with `file:line`, except a last
 *    line without its newline, which is what a crash mid-append leaves and is skipped with a note. Lines
 *    of other kinds are skipped with a note, so new kinds do not break old reports.
 *  - `eval-<split>.json`: the eval step's records (eval/eval_record.ts).
 *  - `examples/<id>-<role>.png` with role image, label, pred or overlay.
 * Missing inputs are not errors: the report says what is missing.
 */
import { Data, Effect, Schema } from "effect";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { type EvalRecord, readEvalRecord, toPercent } from "../eval/eval_record.ts";
import { parseJsonText } from "../io/json_file.ts";

/** JSON has no NaN: a diverged loss arrives as null and is drawn as a gap. */
const Value = Schema.NullOr(Schema.Number);
const Step = Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0));

export const TrainLine = Schema.Struct({
  kind: Schema.Literal("train"),
  step: Step,
  epoch: Schema.Number,
  lr: Value,
  loss: Value,
  terms: Schema.optional(Schema.Record(Schema.String, Value)),
  imagesPerSecond: Schema.optional(Value),
  elapsedSeconds: Schema.optional(Value),
});
export type TrainLine = typeof TrainLine.Type;

export const EvalLine = Schema.Struct({
  kind: Schema.Literal("eval"),
  step: Step,
  split: Schema.String,
  /** Images evaluated; absent in logs written before it was recorded. */
  images: Schema.optional(Step),
  units: Schema.optional(Schema.Literal("percent")),
  mIoU: Value,
  aAcc: Schema.optional(Value),
  mAcc: Schema.optional(Value),
  mAP: Schema.optional(Value),
});
export type EvalLine = typeof EvalLine.Type;

export class ReportError extends Data.TaggedError("ReportError")<{
  readonly file: string;
  readonly message: string;
}> {}

export interface MetricsLog {
  readonly train: readonly TrainLine[];
  readonly eval: readonly EvalLine[];
  readonly notes: readonly string[];
}

export type ExampleRole = "image" | "label" | "pred" | "overlay";

/** `examples/<id>-classes.json` (eval/examples.ts): where the example sits and the classes it shows. */
export const ExampleClasses = Schema.Struct({
  /** 0-based position among the `of` evaluated images. */
  index: Step,
  of: Step,
  classes: Schema.Array(Schema.Struct({
    class: Step,
    name: Schema.String,
    color: Schema.Tuple([Schema.Number, Schema.Number, Schema.Number]),
    labelPixels: Schema.Number,
    predPixels: Schema.Number,
  })),
});
export type ExampleClasses = typeof ExampleClasses.Type;

export interface Example {
  readonly id: string;
  /** PNG bytes by role; a role may be missing. */
  readonly images: Readonly<Partial<Record<ExampleRole, Uint8Array>>>;
  /** Its place in the split and its classes, when the evaluation wrote them. */
  readonly legend?: ExampleClasses;
}

export interface RunInputs {
  readonly runDir: string;
  readonly log: MetricsLog;
  /** Sorted by split name, "val" first. */
  readonly evals: readonly EvalRecord[];
  readonly examples: readonly Example[];
  /** How many example ids exist beyond those loaded (see `maxExamples`). */
  readonly examplesOmitted: number;
  readonly notes: readonly string[];
}

const describe = (e: unknown) => (e instanceof Error ? e.message : String(e));
const oneLine = (message: string) => message.replace(/\s*\n\s*/g, " ");
const isMissing = (e: unknown) => (e as { code?: string }).code === "ENOENT";

/** Parses metrics.jsonl text; `file` names it in errors and notes. */
export const parseMetricsLog = (text: string, file: string): Effect.Effect<MetricsLog, ReportError> =>
  Effect.gen(function* () {
    const train: TrainLine[] = [];
    const evals: EvalLine[] = [];
    const notes: string[] = [];
    const otherKinds = new Map<string, number>();
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i].trim();
      if (line === "") continue;
      const where = `${file}:${i + 1}`;
      const parsed = yield* Effect.result(parseJsonText(line, where, file));
      if (parsed._tag === "Failure") {
        if (i === lines.length - 1) {
          notes.push(`${where}: skipped an unterminated last line (interrupted write?)`);
          continue;
        }
        return yield* Effect.fail(new ReportError({ file, message: parsed.failure.message }));
      }
      const json = parsed.success;
      const kind = (json as { kind?: unknown } | null)?.kind;
      const schema = kind === "train" ? TrainLine : kind === "eval" ? EvalLine : undefined;
      if (schema === undefined) {
        const name = JSON.stringify(kind ?? null);
        otherKinds.set(name, (otherKinds.get(name) ?? 0) + 1);
        continue;
      }
      const decoded = Schema.decodeUnknownResult(schema)(json);
      if (decoded._tag === "Failure") {
        return yield* Effect.fail(
          new ReportError({ file, message: `${where}: ${kind} line: ${oneLine(decoded.failure.message)}` }),
        );
      }
      if (decoded.success.kind === "train") train.push(decoded.success);
      else evals.push(evalLineInPercent(decoded.success));
    }
    for (const [kind, count] of otherKinds) notes.push(`${file}: skipped ${count} line(s) of kind ${kind}`);
    return { train, eval: evals, notes };
  });

/** An eval line in percent: lines from before `units` held fractions (mAP was already ×100). */
const evalLineInPercent = (l: EvalLine): EvalLine =>
  l.units === "percent" ? l : {
    ...l,
    units: "percent",
    mIoU: toPercent(l.mIoU),
    ...(l.aAcc === undefined ? {} : { aAcc: toPercent(l.aAcc) }),
    ...(l.mAcc === undefined ? {} : { mAcc: toPercent(l.mAcc) }),
  };

export const readMetricsLog = (file: string): Effect.Effect<MetricsLog, ReportError> =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8").catch((e) => (isMissing(e) ? undefined : Promise.reject(e))),
    catch: (e) => new ReportError({ file, message: `${file}: cannot read (${describe(e)})` }),
  }).pipe(
    Effect.flatMap((text) =>
      text === undefined
        ? Effect.succeed({ train: [], eval: [], notes: [`${file}: not found`] })
        : parseMetricsLog(text, file)
    ),
  );

const listDir = (dir: string): Effect.Effect<string[], ReportError> =>
  Effect.tryPromise({
    try: () => readdir(dir).catch((e) => (isMissing(e) ? [] : Promise.reject(e))),
    catch: (e) => new ReportError({ file: dir, message: `${dir}: cannot list (${describe(e)})` }),
  });

const splitOrder = (split: string) => (split === "val" ? 0 : split === "test" ? 1 : 2);

const EXAMPLE_FILE = /^(.+)-(image|label|pred|overlay)\.png$/;
const LEGEND_FILE = /^(.+)-classes\.json$/;

export interface ReadRunOptions {
  /** Most example ids to embed (sorted by id); the rest are counted, not loaded. Default 8. */
  readonly maxExamples?: number;
}

/** An example's `-classes.json`, validated; errors name the file. */
const readLegend = (file: string): Effect.Effect<ExampleClasses, ReportError> =>
  Effect.gen(function* () {
    const text = yield* Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: (e) => new ReportError({ file, message: `${file}: cannot read (${describe(e)})` }),
    });
    const json = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) => new ReportError({ file, message: `${file}: not JSON (${describe(e)})` }),
    });
    return yield* Schema.decodeUnknownEffect(ExampleClasses)(json).pipe(
      Effect.mapError((e) => new ReportError({ file, message: `${file}: ${oneLine(e.message)}` })),
    );
  });

/** Reads everything the report shows from a run folder. */
export const readRunInputs = (
  runDir: string,
  { maxExamples = 8 }: ReadRunOptions = {},
): Effect.Effect<RunInputs, ReportError> =>
  Effect.gen(function* () {
    const log = yield* readMetricsLog(join(runDir, "metrics.jsonl"));
    const names = yield* listDir(runDir);
    const evalFiles = names.filter((n) => /^eval-.+\.json$/.test(n));
    const evals = yield* Effect.forEach(evalFiles, (n) =>
      readEvalRecord(join(runDir, n)).pipe(
        Effect.mapError((e) => new ReportError({ file: e.file, message: e.message })),
      ));
    evals.sort((a, b) => splitOrder(a.split) - splitOrder(b.split) || a.split.localeCompare(b.split));

    const examplesDir = join(runDir, "examples");
    const byId = new Map<string, Map<ExampleRole, string>>();
    const legendFiles = new Map<string, string>();
    for (const name of (yield* listDir(examplesDir)).sort()) {
      const legend = LEGEND_FILE.exec(name);
      if (legend) legendFiles.set(legend[1], join(examplesDir, name));
      const m = EXAMPLE_FILE.exec(name);
      if (!m) continue;
      const roles = byId.get(m[1]) ?? new Map<ExampleRole, string>();
      roles.set(m[2] as ExampleRole, join(examplesDir, name));
      byId.set(m[1], roles);
    }
    const ids = [...byId.keys()].sort();
    const examples = yield* Effect.forEach(ids.slice(0, maxExamples), (id) =>
      Effect.gen(function* () {
        const images: Partial<Record<ExampleRole, Uint8Array>> = {};
        for (const [role, file] of byId.get(id)!) {
          const bytes = yield* Effect.tryPromise({
            try: () => readFile(file),
            catch: (e) => new ReportError({ file, message: `${file}: cannot read (${describe(e)})` }),
          });
          images[role] = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
        }
        const legendFile = legendFiles.get(id);
        return legendFile === undefined
          ? { id, images }
          : { id, images, legend: yield* readLegend(legendFile) };
      }));
    const notes = [...log.notes];
    return {
      runDir,
      log,
      evals,
      examples,
      examplesOmitted: Math.max(0, ids.length - maxExamples),
      notes,
    };
  });
