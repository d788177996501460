/**
 * What `deno task web` serves, from what it is given:
 *
 * - a run folder: its inference export (`model.onnx`) and a training export (train/export_training.ts)
 *   from its checkpoint, made in memory;
 * - a folder written by `export --training`: its files as they are;
 * - an experiment (`.ts` / `.json`): a training export from its initialization (the pretrained backbone),
 *   so the page fine-tunes it from step 0;
 * - an `.onnx` file: segmenting only (the page checks it is a kappa export);
 * - nothing: the page, which opens a model dropped on it.
 *
 * A model the page cannot train (panoptic, a plan with host stages) is still served for segmenting when it
 * can be, with the reason training is not offered.
 */
import { Data, Effect } from "effect";
import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { loadExperiment } from "../dsl/experiment.ts";
import { openDataset } from "../data/open.ts";
import { exportModel } from "../eval/export_model.ts";
import { exportedModel } from "../kinds/export.ts";
import { loadRun } from "../train/load_run.ts";
import {
  exportExperimentTraining,
  exportRunTraining,
  TRAINING_FILES,
  type TrainingExportOptions,
} from "../train/export_training.ts";

/** The JSON the page reads first (`/files/manifest.json`). */
export interface Manifest {
  readonly title: string;
  readonly source: string;
  readonly model: string | null;
  readonly infer: string | null;
  readonly training: string | null;
  readonly colors: readonly (readonly [number, number, number])[] | null;
  readonly trainingNote: string | null;
}

export interface Served {
  readonly manifest: Manifest;
  /** File name (under `/files/`) → bytes. */
  readonly files: ReadonlyMap<string, Uint8Array>;
}

/** The path given to `web` is none of the things it serves. */
export class WebSourceError
  extends Data.TaggedError("WebSourceError")<{ readonly file: string; readonly reason: string }> {
  override get message(): string {
    return `${this.file}: ${this.reason}`;
  }
}

const url = (name: string) => `/files/${name}`;

const nothing: Served = {
  manifest: {
    title: "no model",
    source: "no model given: drop a kappa .onnx export on the page (or run: deno task web runs/<run>)",
    model: null,
    infer: null,
    training: null,
    colors: null,
    trainingNote: null,
  },
  files: new Map(),
};

/** The files of a training export, served as they are, with the manifest saying what they are. */
const trainingServed = (
  title: string,
  source: string,
  files: Readonly<Record<string, Uint8Array>>,
  colors: Manifest["colors"],
): Served => ({
  manifest: {
    title,
    source,
    model: TRAINING_FILES.model in files ? url(TRAINING_FILES.model) : null,
    infer: TRAINING_FILES.infer in files ? url(TRAINING_FILES.infer) : null,
    training: url(TRAINING_FILES.settings),
    colors,
    trainingNote: null,
  },
  files: new Map(Object.entries(files)),
});

/** The dataset's class colours, when the dataset can be opened here. */
const datasetColors = (e: Parameters<typeof openDataset>[0], split: string) =>
  openDataset(e, split).pipe(
    Effect.map((d) => d.classes.colors.map((c) => [c[0], c[1], c[2]] as const)),
    Effect.orElseSucceed(() => null),
  );

const fromRun = (dir: string, checkpoint: string | undefined, options: TrainingExportOptions) =>
  Effect.gen(function* () {
    const run = yield* loadRun(dir, checkpoint);
    const e = run.experiment;
    const colors = yield* datasetColors(e.data.dataset, e.data.dataset.testSplit);
    const title = `${e.name} (${basename(dir)})`;
    const trained = yield* Effect.result(exportRunTraining(dir, checkpoint, options));
    if (trained._tag === "Success") {
      return trainingServed(
        title,
        `${dir}: ${trained.success.settings.source}`,
        trained.success.files,
        colors,
      );
    }
    // No training in the tab for this run: still segment with its export when it is a semantic one
    // (the page reads a `classes` output and says so of an export without one).
    const note = `fine-tuning in the tab is not offered: ${trained.failure.message}`;
    const names = yield* openDataset(e.data.dataset, e.data.dataset.testSplit).pipe(
      Effect.map((d) => d.classes.names),
      Effect.orElseSucceed(() => undefined),
    );
    const exported = yield* Effect.result(
      exportedModel(e, run.state, { dir, checkpoint: run.checkpoint, step: run.step, runs: loadRun }),
    );
    if (exported._tag === "Failure") {
      return {
        ...nothing,
        manifest: { ...nothing.manifest, title, source: `${dir}: ${run.checkpoint}`, trainingNote: note },
      } satisfies Served;
    }
    const { bytes } = exportModel(e, run.state, exported.success, { classNames: names });
    return {
      manifest: {
        title,
        source: `${dir}: ${run.checkpoint} (${run.why})`,
        model: url(TRAINING_FILES.model),
        infer: null,
        training: null,
        colors,
        trainingNote: note,
      },
      files: new Map([[TRAINING_FILES.model, bytes]]),
    } satisfies Served;
  });

const fromTrainingFolder = (dir: string) =>
  Effect.gen(function* () {
    const files: Record<string, Uint8Array> = {};
    for (const name of Object.values(TRAINING_FILES)) {
      if (!existsSync(join(dir, name))) continue;
      files[name] = yield* Effect.promise(() => readFile(join(dir, name)).then((b) => new Uint8Array(b)));
    }
    const missing = [TRAINING_FILES.step, TRAINING_FILES.state, TRAINING_FILES.shard].filter((n) =>
      !(n in files)
    );
    if (missing.length > 0) {
      return yield* new WebSourceError({
        file: dir,
        reason: `a training export without ${missing.join(", ")}`,
      });
    }
    const settings = JSON.parse(new TextDecoder().decode(files[TRAINING_FILES.settings]));
    return trainingServed(
      settings.experiment,
      `${dir}: ${settings.source}`,
      files,
      settings.classColors ?? null,
    );
  });

/** What to serve for the path given on the command line (see the module comment). */
export const webSource = (
  path: string | undefined,
  checkpoint?: string,
  options: TrainingExportOptions = {},
) =>
  Effect.gen(function* () {
    if (path === undefined) return nothing;
    if (!existsSync(path)) return yield* new WebSourceError({ file: path, reason: "no such file or folder" });
    if (statSync(path).isDirectory()) {
      if (existsSync(join(path, TRAINING_FILES.settings))) return yield* fromTrainingFolder(path);
      if (existsSync(join(path, "experiment.json"))) return yield* fromRun(path, checkpoint, options);
      return yield* new WebSourceError({
        file: path,
        reason: "neither a run folder (no experiment.json) nor a training export (no training.json)",
      });
    }
    if (path.endsWith(".onnx")) {
      const bytes = yield* Effect.promise(() => readFile(path).then((b) => new Uint8Array(b)));
      return {
        manifest: { ...nothing.manifest, title: basename(path), source: path, model: url(basename(path)) },
        files: new Map([[basename(path), bytes]]),
      } satisfies Served;
    }
    if (/\.(ts|json)$/.test(path)) {
      const e = yield* loadExperiment(path);
      const colors = yield* datasetColors(e.data.dataset, e.data.dataset.testSplit);
      const x = yield* exportExperimentTraining(e, options);
      return trainingServed(e.name, `${path}: ${x.settings.source}`, x.files, colors);
    }
    return yield* new WebSourceError({
      file: path,
      reason: "not a run folder, a training export, an experiment (.ts, .json) or a model (.onnx)",
    });
  });
