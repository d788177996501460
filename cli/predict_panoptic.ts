/**
 * `predict` for a panoptic run: per image the model at the test pipeline's size, mask-wise merging at the
 * image's own size, then `<stem>_panoptic.png` (COCO panoptic PNG: id = R + 256·G + 256²·B),
 * `<stem>-panoptic.png` (class colours, instances shaded apart, white outlines) and
 * `<stem>-overlay.png` (that picture over the image), and one `panoptic.json` in COCO's layout
 * (`annotations[].segments_info` with COCO category ids, area, bbox and score; `categories`).
 * `--export-size` predicts the way the exported ONNX model is used (`eval/export_size.ts`).
 */
import { Console, Effect } from "effect";
import { mkdir, writeFile } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { maxPixelsOf, readRgb } from "../data/decode.ts";
import { rescaleSize, resizeRgb } from "../data/resize.ts";
import { normalizeRgb } from "../data/normalize.ts";
import { openDataset } from "../data/open.ts";
import type { CocoDataset } from "../data/coco.ts";
import { calibratedMerge, makePanopticPredictor } from "../eval/panoptic_eval.ts";
import { colorizePanoptic, panopticPngRgb, segmentsInfo } from "../eval/panoptic_output.ts";
import { overlay, writePng } from "../eval/colorize.ts";
import type { ExperimentFor } from "../interpret/kinds.ts";
import { fitSize } from "../eval/export_size.ts";
import type { RuntimeOptions } from "../runtime/execute.ts";
import type { Value } from "../ir/value.ts";

export const predictPanoptic = (
  run: { readonly dir: string; readonly checkpoint: string; readonly state: ReadonlyMap<string, Value> },
  e: ExperimentFor<"panoptic">,
  images: readonly string[],
  out: string,
  runtime: RuntimeOptions & {
    /** Predict as the exported model is used (`eval/export_size.ts`): fit into the crop size, pad to it. */
    readonly exportSize?: boolean;
  },
) =>
  Effect.scoped(Effect.gen(function* () {
    const dataset = (yield* openDataset(e.data.dataset, e.data.dataset.testSplit)) as Partial<CocoDataset> & {
      classes: CocoDataset["classes"];
      mapping: CocoDataset["mapping"];
    };
    const classes = dataset.classes;
    const isThing = classes.isThing ?? classes.names.map(() => false);
    // Training class → COCO category id (the first category the dataset maps to it).
    const cocoId = new Map<number, number>();
    for (const c of dataset.categories ?? []) {
      const t = dataset.mapping.lut[c.id];
      if (t >= 0 && t < e.model.classes && !cocoId.has(t)) cocoId.set(t, c.id);
    }
    const predictor = yield* makePanopticPredictor(e.model, run.state, isThing, {
      ...runtime,
      trainSize: e.data.train.cropSize,
    });
    // A calibrated model merges with the class thresholds its evaluation chose on the training split.
    const merge = yield* calibratedMerge(run.dir, e);
    if (e.model.mergeCalibration) {
      yield* Console.log(
        merge === e.model.merge
          ? `no eval-${e.data.dataset.testSplit}.json with a calibration in ${run.dir}: merging with the spec's thresholds`
          : `merging with class thresholds thing ${merge.thingThreshold} / stuff ${merge.stuffThreshold} (chosen on ${e.data.dataset.trainSplit})`,
      );
    }
    yield* Effect.promise(() => mkdir(out, { recursive: true }));
    const annotations: unknown[] = [];
    for (const file of images) {
      const img = yield* readRgb(file, { maxPixels: maxPixelsOf(e.data.dataset) });
      const crop = e.data.train.cropSize;
      // --export-size: the exported model's rule (fit inside the crop, pad bottom/right to it, merge on the
      // image's region, ids back to the image's size by nearest neighbour); else the test pipeline's size.
      const [h, w] = runtime.exportSize
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
        runtime.exportSize ? crop : undefined,
      );
      const stem = basename(file, extname(file));
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
      annotations.push({ image_id: stem, file_name: basename(png), segments_info: info });
      yield* Console.log(
        `${file} → ${png}: ${info.length} segments (${info.filter((s) => s.isthing).length} things)`,
      );
    }
    const json = join(out, "panoptic.json");
    const categories = [...cocoId].map(([t, id]) => ({
      id,
      name: classes.names[t],
      isthing: isThing[t] ? 1 : 0,
    }));
    yield* Effect.promise(() =>
      writeFile(
        json,
        JSON.stringify({ run: run.dir, checkpoint: run.checkpoint, annotations, categories }, null, 2) + "\n",
      )
    );
    yield* Console.log(`wrote ${json}`);
  }));
