/**
 * `deno task predict <run-dir> <image|folder...> --out DIR`: the run's model kind predicts each image and
 * writes its outputs (semantic: mask, overlay with a legend, `predictions.json`; panoptic: COCO panoptic
 * PNGs, pictures, `panoptic.json`), each input under its own name. A folder stands for the images in it
 * (cli/image_inputs.ts). The summary file is rewritten after every image, so Ctrl-C leaves it listing the
 * images done (and says how many). `--export-size` predicts exactly as the exported ONNX model is used
 * (eval/export_size.ts), for comparing the two.
 */
import { Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { predictFiles } from "../eval/prediction.ts";
import { bindKind, kindPart } from "../kinds/registry.ts";
import { loadRun } from "../train/load_run.ts";
import { runFlags } from "./train.ts";
import type { Provider } from "../runtime/execute.ts";
import { checkpointFlag, pathFlag, runArgument } from "./flag_schema.ts";
import { imageInputs, imagesArgument } from "./image_inputs.ts";

export const predictCommand = Command.make("predict", {
  run: runArgument(),
  images: imagesArgument(),
  out: pathFlag(
    "out",
    "output folder: what the run's model kind writes per image (semantic: masks, overlays and " +
      "predictions.json; panoptic: COCO panoptic PNGs, pictures and panoptic.json)",
  ),
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
    const bound = yield* bindKind(run.experiment, loadRun);
    const prediction = yield* kindPart(bound, "prediction", "predict");
    const print = (line: string) => console.log(line);
    const predictor = yield* prediction.open(run, a.out, {
      provider: a.provider as Provider,
      threads: Option.getOrUndefined(a.threads),
      exportSize: a.exportSize,
      print,
    });
    yield* predictFiles(predictor, images, a.out, { print });
  }))).pipe(
    Command.withDescription("Predict images with a trained run: what its model kind writes per image."),
  );
