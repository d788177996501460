/**
 * `predict` for a panoptic run: per image the model at the test pipeline's size, mask-wise merging at the
 * image's own size, then `<stem>_panoptic.png` (COCO panoptic PNG: id = R + 256·G + 256²·B),
 * `<stem>-panoptic.png` (class colours, instances shaded apart, white outlines) and `<stem>-overlay.png`
 * (that picture over the image); and one `panoptic.json`, a complete COCO panoptic results file that
 * panopticapi's `pq_compute` reads: `images` (id, file_name, width, height), `annotations` (image_id,
 * file_name, `segments_info` with COCO category ids, area, bbox and score) and `categories`.
 *
 * Image ids are COCO's integers: an image of the run's dataset (either split) gets its `images[].id`;
 * another gets the number its file name ends with (`000000000139.jpg` → 139), or the next free id.
 * `--export-size` predicts the way the exported ONNX model is used (`eval/export_size.ts`).
 */
import { Effect } from "effect";
import { basename, join, resolve } from "node:path";
import type { ExperimentOf } from "../dsl/experiment.ts";
import type { PanopticSegmenter } from "../dsl/model.ts";
import { trainSize } from "../interpret/shapes.ts";
import { maxPixelsOf, readRgb } from "../data/decode.ts";
import { rescaleSize, resizeRgb } from "../data/resize.ts";
import { normalizeRgb } from "../data/normalize.ts";
import { openDataset } from "../data/open.ts";
import type { CocoDataset } from "../data/coco.ts";
import type { Dataset } from "../data/dataset.ts";
import { makePanopticPredictor } from "../eval/panoptic_eval.ts";
import { colorizePanoptic, panopticPngRgb, segmentsInfo } from "../eval/panoptic_output.ts";
import { overlay, writePng } from "../eval/colorize.ts";
import { fitSize } from "../eval/export_size.ts";
import type { Prediction } from "../eval/prediction.ts";
import { checkpointMerge } from "./panoptic_calibration.ts";

/**
 * COCO image ids for predicted files: the dataset's id of a file it lists, else the number the stem ends
 * with, else (or when that id is taken) the next id above every id given so far.
 */
export const cocoImageIds = (known: ReadonlyMap<string, number>) => {
  const used = new Set<number>();
  return (file: string, stem: string): number => {
    const listed = known.get(resolve(file));
    const trailing = /(\d+)\D*$/.exec(stem)?.[1];
    let id = listed ?? (trailing === undefined ? undefined : Number(trailing));
    if (id === undefined || used.has(id) || !Number.isSafeInteger(id)) id = Math.max(0, ...used) + 1;
    used.add(id);
    return id;
  };
};

/** The images of the dataset's splits (train and test), by absolute file path → COCO image id. */
const datasetImageIds = (datasets: readonly Dataset[]): Map<string, number> =>
  new Map(
    datasets.flatMap((d) =>
      [...((d as Partial<CocoDataset>).imageIds ?? [])].map(([f, id]) => [resolve(f), id])
    ),
  );

export const panopticPrediction = (e: ExperimentOf<PanopticSegmenter>): Prediction => ({
  open: (run, out, request) =>
    Effect.gen(function* () {
      const test = (yield* openDataset(e.data.dataset, e.data.dataset.testSplit)) as CocoDataset;
      const train = yield* openDataset(e.data.dataset, e.data.dataset.trainSplit);
      const classes = test.classes;
      const isThing = classes.isThing ?? classes.names.map(() => false);
      // Training class → COCO category id (the first category the dataset maps to it).
      const cocoId = new Map<number, number>();
      for (const c of test.categories ?? []) {
        const t = test.mapping.lut[c.id];
        if (t >= 0 && t < e.model.classes && !cocoId.has(t)) cocoId.set(t, c.id);
      }
      const categories = [...cocoId].map(([t, id]) => ({
        id,
        name: classes.names[t],
        isthing: isThing[t] ? 1 : 0,
      }));
      const imageId = cocoImageIds(datasetImageIds([test, train]));
      const crop = trainSize(e);
      const predictor = yield* makePanopticPredictor(e.model, run.state, isThing, {
        provider: request.provider,
        threads: request.threads,
        trainSize: crop,
      });
      // A calibrated model merges with the class thresholds an evaluation of this checkpoint chose.
      const merge = yield* checkpointMerge(e, run, request.print);
      return {
        predict: (file, stem) =>
          Effect.gen(function* () {
            const img = yield* readRgb(file, { maxPixels: maxPixelsOf(e.data.dataset) });
            // --export-size: the exported model's rule (fit inside the crop, pad bottom/right to it, merge
            // on the image's region, ids back to the image's size by nearest neighbour); else the test
            // pipeline's size.
            const [h, w] = request.exportSize
              ? fitSize(img.height, img.width, crop)
              : e.data.test.resize === null
              ? [img.height, img.width]
              : rescaleSize(img.height, img.width, e.data.test.resize);
            const resized = yield* resizeRgb(img.data, img.height, img.width, h, w);
            const [p] = yield* predictor.predictEach(
              normalizeRgb(resized, h, w, e.data.test.mean, e.data.test.std),
              h,
              w,
              [img.height, img.width],
              [merge],
              request.exportSize ? crop : undefined,
            );
            const png = join(out, `${stem}_panoptic.png`);
            yield* writePng(png, panopticPngRgb(p.ids), img.width, img.height);
            const picture = colorizePanoptic(p.ids, img.width, img.height, p.segments, classes.colors);
            yield* writePng(join(out, `${stem}-panoptic.png`), picture, img.width, img.height);
            yield* writePng(
              join(out, `${stem}-overlay.png`),
              overlay(img.data, picture, 0.5),
              img.width,
              img.height,
            );
            const info = segmentsInfo(p.ids, img.width, p.segments, (c) => cocoId.get(c) ?? c);
            const id = imageId(file, stem);
            return {
              entry: {
                image: { id, file_name: basename(file), width: img.width, height: img.height },
                annotation: { image_id: id, file_name: basename(png), segments_info: info },
              },
              line: `${file} → ${png}: ${info.length} segments (${
                info.filter((s) => s.isthing).length
              } things)`,
            };
          }),
        summary: (entries) => {
          const done = entries as readonly { image: unknown; annotation: unknown }[];
          return {
            name: "panoptic.json",
            json: {
              run: run.dir,
              checkpoint: run.checkpoint,
              images: done.map((d) => d.image),
              annotations: done.map((d) => d.annotation),
              categories,
            },
          };
        },
      };
    }),
});
