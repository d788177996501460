/**
 * `deno task export <run-dir> <file.onnx>`: a self-contained inference model (parameters embedded,
 * dynamic batch) at the training crop size, with the outputs and `metadata_props` of the run's model kind
 * (semantic: `classes`, `logits`, `scores`, `selected`; panoptic: the class and mask probabilities and the
 * merging rule). Input: `images` float32 [batch, 3, H, W], normalized (x − mean) / std, RGB; the metadata
 * (printed too) says how to fit an image of any size to H×W and map the result back (eval/export_size.ts).
 * `--quantize int8`: the parameters' matmuls run in int8 (weights per column within ±64, so that CPUs
 * without VNNI compute them exactly too; activations per tensor at run time; onnx/quantize.ts); `int8-conv`:
 * the convolutions too; `int8-static`: the convolutions with activation scales calibrated on
 * `--calibration-images` training images (onnx/quantize_static.ts, eval/export_calibration.ts), which ONNX
 * Runtime runs as QLinearConv.
 */
import { Console, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { writeFile } from "node:fs/promises";
import { EXPORT_QUANTIZATIONS, exportModel } from "../eval/export_model.ts";
import { calibrateExport, CALIBRATION_IMAGES } from "../eval/export_calibration.ts";
import { exportedModel } from "../kinds/export.ts";
import { loadRun } from "../train/load_run.ts";
import { openDataset } from "../data/open.ts";
import { errorLines } from "./errors.ts";
import { BOUNDS, checkpointFlag, intFlag, pathArgument, runArgument } from "./flag_schema.ts";
import { exportRunTraining, writeTrainingExport } from "../train/export_training.ts";

export const exportCommand = Command.make("export", {
  run: runArgument(),
  file: pathArgument("file.onnx", "the ONNX file to write"),
  checkpoint: checkpointFlag(),
  quantize: Flag.Literals("quantize", EXPORT_QUANTIZATIONS).pipe(
    Flag.optional,
    Flag.withDescription(`reduced-precision weights: ${EXPORT_QUANTIZATIONS.join(", ")}`),
  ),
  calibrationImages: intFlag(
    "calibration-images",
    BOUNDS.images,
    `--quantize int8-static: training images that calibrate the activation scales (default ${CALIBRATION_IMAGES})`,
  ).pipe(Flag.withDefault(CALIBRATION_IMAGES)),
  training: Flag.Boolean("training").pipe(
    Flag.withDefault(false),
    Flag.withDescription(
      "write the training export for the browser into <file.onnx> taken as a folder: model.onnx, the step graph, " +
        "the state, a shard of training batches, training.json (deno task web <folder> serves it)",
    ),
  ),
}, (a) =>
  Effect.gen(function* () {
    if (a.training) {
      const x = yield* exportRunTraining(a.run, Option.getOrUndefined(a.checkpoint));
      for (const file of yield* writeTrainingExport(a.file, x)) yield* Console.log(`wrote ${file}`);
      return yield* Console.log(
        `from ${x.settings.source}; serve it with: npx --yes deno@2.9.6 task web ${a.file}`,
      );
    }
    const run = yield* loadRun(a.run, Option.getOrUndefined(a.checkpoint));
    const e = run.experiment;
    const quantize = Option.getOrUndefined(a.quantize);
    // The class names come from the dataset's class table, as predict's legend does; an export without the
    // data at hand still works, without names, and says so.
    const classNames = yield* openDataset(e.data.dataset, e.data.dataset.testSplit).pipe(
      Effect.map((d) => d.classes.names),
      Effect.catch((error) =>
        Console.error(`no kappa.class_names in the export: ${errorLines(error)[0]}`).pipe(
          Effect.as(undefined),
        )
      ),
    );
    const model = yield* exportedModel(e, run.state, { ...run, runs: loadRun, print: (l) => console.log(l) });
    const ranges = quantize === "int8-static"
      ? yield* calibrateExport(e, run.state, model, a.calibrationImages)
      : undefined;
    const { bytes, inputs, outputs, metadata } = exportModel(e, run.state, model, {
      quantize,
      ranges,
      classNames,
    });
    yield* Effect.promise(() => writeFile(a.file, bytes));
    yield* Console.log(`wrote ${a.file} (${(bytes.length / 1e6).toFixed(1)} MB) from ${run.checkpoint}`);
    for (
      const v of [
        ...inputs.map((i) => ["input", i] as const),
        ...outputs.map((o) => ["output", o] as const),
      ]
    ) {
      yield* Console.log(
        `  ${v[0].padEnd(6)} ${v[1].name.padEnd(9)} ${v[1].dtype}[${v[1].shape.join(", ")}]`,
      );
    }
    for (const [key, v] of Object.entries(metadata)) yield* Console.log(`  meta   ${key} = ${v}`);
  })).pipe(Command.withDescription("Export a run as a self-contained ONNX model with a dynamic batch."));
