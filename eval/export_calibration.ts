/**
 * Calibration of the static int8 export (`deno task export --quantize int8-static`,
 * onnx/quantize_static.ts): the float32 export runs on training images prepared exactly as the export's
 * users prepare theirs (eval/export_size.ts), with every tensor that gets a fixed uint8 scale fetched as
 * an extra output; a tensor's range is its minimum and maximum over all of them (what ONNX Runtime's
 * quantization tool calls MinMax calibration). Training images, so that the validation split that
 * measures the quantized model's accuracy plays no part in choosing its scales.
 */
import { Effect } from "effect";
import type { AnyExperiment } from "../dsl/experiment.ts";
import { openDataset } from "../data/open.ts";
import { openSession, runSession } from "../runtime/execute.ts";
import { type Value, value } from "../ir/value.ts";
import { trainSize } from "../interpret/shapes.ts";
import { type ExportedModel, exportModel } from "./export_model.ts";
import { calibrationTensors, type Range, withOutputs } from "../onnx/quantize_static.ts";
import { exportInput } from "./export_size.ts";

/** How many training images calibrate by default. */
export const CALIBRATION_IMAGES = 64;

/** `count` training images spread evenly over the split (sorted by id), as export inputs [1, 3, H, W]. */
export const calibrationImages = (e: AnyExperiment, count = CALIBRATION_IMAGES) =>
  Effect.gen(function* () {
    const dataset = yield* openDataset(e.data.dataset, e.data.dataset.trainSplit);
    const n = Math.min(count, dataset.samples.length);
    const images: Float32Array[] = [];
    for (let i = 0; i < n; i++) {
      const img = yield* dataset.read(dataset.samples[Math.floor((i * dataset.samples.length) / n)]);
      const rgb = { data: img.image, height: img.height, width: img.width };
      images.push((yield* exportInput(rgb, e)).images);
    }
    return images;
  });

/**
 * The range of every tensor `calibrationTensors` names in the float32 model `bytes` (its parameters'
 * convolutions limited to `weights`), over `images` at the export size `[height, width]`.
 */
export const calibrationRanges = (
  bytes: Uint8Array,
  images: readonly Float32Array[],
  [height, width]: readonly [number, number],
  weights?: ReadonlySet<string>,
) =>
  Effect.scoped(Effect.gen(function* () {
    const tensors = calibrationTensors(bytes, weights);
    const session = yield* openSession("calibration", withOutputs(bytes, tensors));
    const ranges = new Map<string, Range>(tensors.map((t) => [t, { min: Infinity, max: -Infinity }]));
    for (const image of images) {
      const feeds = { images: value("float32", image, [1, 3, height, width]) };
      const out = yield* Effect.promise(() => runSession(session, feeds, [...tensors]));
      for (const t of tensors) {
        const data = (out as Record<string, { data: Float32Array }>)[t].data;
        let { min, max } = ranges.get(t)!;
        for (let i = 0; i < data.length; i++) {
          const v = data[i];
          if (v < min) min = v;
          if (v > max) max = v;
        }
        ranges.set(t, { min, max });
      }
    }
    return ranges;
  }));

/** The ranges `exportModel(…, { quantize: "int8-static" })` needs: the run's float32 export calibrated. */
export const calibrateExport = (
  e: AnyExperiment,
  state: ReadonlyMap<string, Value>,
  model: ExportedModel,
  count = CALIBRATION_IMAGES,
) =>
  Effect.gen(function* () {
    const images = yield* calibrationImages(e, count);
    const float = exportModel(e, state, model).bytes;
    return yield* calibrationRanges(float, images, trainSize(e), new Set(state.keys()));
  });
