/**
 * `predict` for a semantic run: for each image a colorized mask (`<stem>-mask.png`), an overlay with a
 * legend strip (colour and name of each class present) below it (`<stem>-overlay.png`), and an entry in
 * `predictions.json` with the selected top-κ classes, their multi-label scores and the same legend. The
 * model runs at the test pipeline's size and the classes come back at the image's; `--export-size`
 * predicts exactly as the exported ONNX model is used (eval/export_size.ts).
 */
import { Effect } from "effect";
import { join } from "node:path";
import type { ExperimentOf } from "../dsl/experiment.ts";
import type { Segmenter } from "../dsl/model.ts";
import { trainSize } from "../interpret/shapes.ts";
import { maxPixelsOf, readRgb, type RgbImage } from "../data/decode.ts";
import { rescaleSize, resizeRgb } from "../data/resize.ts";
import { normalizeRgb } from "../data/normalize.ts";
import { openDataset } from "../data/open.ts";
import { makePredictor } from "../eval/predictor.ts";
import { predictAtExportSize } from "../eval/export_size.ts";
import { colorizeMask, overlay, writePng } from "../eval/colorize.ts";
import { legendEntries, writePngWithLegend } from "../eval/legend.ts";
import type { Prediction } from "../eval/prediction.ts";
import type { LoadedRanker } from "./ranker.ts";

export const semanticPrediction = (e: ExperimentOf<Segmenter>, ranker?: LoadedRanker): Prediction => ({
  open: (run, out, request) =>
    Effect.gen(function* () {
      const classes = (yield* openDataset(e.data.dataset, e.data.dataset.testSplit)).classes;
      const predictor = yield* makePredictor(e.model, run.state, {
        ranker,
        mode: "whole",
        trainSize: trainSize(e),
        provider: request.provider,
        threads: request.threads,
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
      return {
        predict: (file, stem) =>
          Effect.gen(function* () {
            const img = yield* readRgb(file, { maxPixels: maxPixelsOf(e.data.dataset) });
            const p = request.exportSize
              ? yield* predictAtExportSize(predictor, img, e)
              : yield* atTestSize(img);
            const maskFile = join(out, `${stem}-mask.png`), overlayFile = join(out, `${stem}-overlay.png`);
            const mask = colorizeMask(p.classes, img.width, img.height, classes.colors, classes.ignoreIndex);
            yield* writePng(maskFile, mask, img.width, img.height);
            const legend = legendEntries(p.classes, classes.names, classes.colors, classes.ignoreIndex);
            yield* writePngWithLegend(
              overlayFile,
              overlay(img.data, mask, 0.5),
              img.width,
              img.height,
              legend,
            );
            const present = new Map<number, number>();
            for (const c of p.classes) present.set(c, (present.get(c) ?? 0) + 1);
            return {
              entry: {
                image: file,
                mask: maskFile,
                overlay: overlayFile,
                legend: legend.map((l) => ({
                  class: l.class,
                  name: l.name,
                  color: l.color,
                  pixels: l.pixels,
                })),
                selected: (p.selected ?? []).map((c, rank) => ({
                  rank,
                  class: c,
                  name: classes.names[c],
                  score: p.scores ? p.scores[c] : null,
                  pixels: present.get(c) ?? 0,
                })),
              },
              line: `${file} → ${maskFile}`,
            };
          }),
        summary: (entries) => ({
          name: "predictions.json",
          json: { run: run.dir, checkpoint: run.checkpoint, predictions: entries },
        }),
      };
    }),
});
