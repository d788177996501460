/**
 * `deno task predict <run-dir> <image...> --out DIR`: for each image a colorized mask, an overlay with a
 * legend strip (colour and name of each class present) below it, and `predictions.json` with the
 * selected top-κ classes, their multi-label scores and the same legend. `--export-size` predicts exactly
 * as the exported ONNX model is used (eval/export_size.ts), for comparing the two.
 */
import { Console, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { mkdir, writeFile } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { maxPixelsOf, readRgb, type RgbImage } from "../data/decode.ts";
import { rescaleSize, resizeRgb } from "../data/resize.ts";
import { normalizeRgb } from "../data/normalize.ts";
import { openDataset } from "../data/open.ts";
import { makePredictor } from "../eval/predictor.ts";
import { predictAtExportSize } from "../eval/export_size.ts";
import { colorizeMask, overlay, writePng } from "../eval/colorize.ts";
import { legendEntries, writePngWithLegend } from "../eval/legend.ts";
import { loadRun } from "../train/load_run.ts";
import { loadRanker } from "../train/ranker.ts";
import { runFlags } from "./train.ts";
import type { Provider } from "../runtime/execute.ts";
import { requireTask } from "../interpret/kinds.ts";
import { predictPanoptic } from "./predict_panoptic.ts";
import { checkpointFlag, pathFlag, runArgument } from "./flag_schema.ts";
import { imageInputs, imagesArgument } from "./image_inputs.ts";

export const predictCommand = Command.make("predict", {
  run: runArgument(),
  images: imagesArgument(),
  out: pathFlag("out", "output folder: masks, overlays and predictions.json"),
  checkpoint: checkpointFlag(),
  exportSize: Flag.Boolean("export-size").pipe(
    Flag.withDefault(false),
    Flag.withDescription("fit to the training crop, pad, map classes back by nearest: as the exported model"),
  ),
  ...runFlags,
}, (a) =>
  Effect.scoped(Effect.gen(function* () {
    const images = yield* imageInputs(a.images);
    const run = yield* loadRun(a.run, Option.getOrUndefined(a.checkpoint));
    if (run.experiment.model._tag === "PanopticSegmenter") {
      const pe = yield* requireTask(run.experiment, "panoptic", "predict");
      return yield* predictPanoptic(run, pe, images, a.out, {
        provider: a.provider as Provider,
        threads: Option.getOrUndefined(a.threads),
        exportSize: a.exportSize,
      });
    }
    const e = yield* requireTask(run.experiment, "semantic", "predict");
    const classes = (yield* openDataset(e.data.dataset, e.data.dataset.testSplit)).classes;
    const ranker = yield* loadRanker(e);
    const predictor = yield* makePredictor(e.model, run.state, {
      ranker,
      mode: "whole",
      trainSize: e.data.train.cropSize,
      provider: a.provider as Provider,
      threads: Option.getOrUndefined(a.threads),
    });
    /** The default: the test pipeline's resize (if any), the model at that size, classes at the image's. */
    const atTestSize = (img: RgbImage) =>
      Effect.gen(function* () {
        const [h, w] = e.data.test.resize === null
          ? [img.height, img.width]
          : rescaleSize(img.height, img.width, e.data.test.resize);
        const resized = yield* resizeRgb(img.data, img.height, img.width, h, w);
        return yield* predictor.predict(
          normalizeRgb(resized, h, w, e.data.test.mean, e.data.test.std),
          h,
          w,
          [img.height, img.width],
        );
      });
    yield* Effect.promise(() => mkdir(a.out, { recursive: true }));
    const results: unknown[] = [];
    for (const file of images) {
      const img = yield* readRgb(file, { maxPixels: maxPixelsOf(e.data.dataset) });
      const p = a.exportSize ? yield* predictAtExportSize(predictor, img, e) : yield* atTestSize(img);
      const stem = basename(file, extname(file));
      const mask = colorizeMask(p.classes, img.width, img.height, classes.colors, classes.ignoreIndex);
      yield* writePng(join(a.out, `${stem}-mask.png`), mask, img.width, img.height);
      const legend = legendEntries(p.classes, classes.names, classes.colors, classes.ignoreIndex);
      yield* writePngWithLegend(
        join(a.out, `${stem}-overlay.png`),
        overlay(img.data, mask, 0.5),
        img.width,
        img.height,
        legend,
      );
      const present = new Map<number, number>();
      for (const c of p.classes) present.set(c, (present.get(c) ?? 0) + 1);
      results.push({
        image: file,
        mask: join(a.out, `${stem}-mask.png`),
        overlay: join(a.out, `${stem}-overlay.png`),
        legend: legend.map((l) => ({ class: l.class, name: l.name, color: l.color, pixels: l.pixels })),
        selected: (p.selected ?? []).map((c, rank) => ({
          rank,
          class: c,
          name: classes.names[c],
          score: p.scores ? p.scores[c] : null,
          pixels: present.get(c) ?? 0,
        })),
      });
      yield* Console.log(`${file} → ${join(a.out, `${stem}-mask.png`)}`);
    }
    const json = join(a.out, "predictions.json");
    yield* Effect.promise(() =>
      writeFile(
        json,
        JSON.stringify({ run: run.dir, checkpoint: run.checkpoint, predictions: results }, null, 2) + "\n",
      )
    );
    yield* Console.log(`wrote ${json}`);
  }))).pipe(Command.withDescription("Predict images with a trained run: masks, overlays, top-κ classes."));
