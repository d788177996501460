/**
 * `deno task predict <run-dir> <image...> --out DIR`: the run's model kind predicts each image and writes
 * its outputs (semantic: mask, overlay with a legend, `predictions.json`; panoptic: COCO panoptic PNGs,
 * pictures, `panoptic.json`), each input under its own name. The summary file is rewritten after every
 * image, so Ctrl-C leaves it listing the images done (and says how many). `--export-size` predicts exactly
 * as the exported ONNX model is used (eval/export_size.ts), for comparing the two.
 */
import { Effect, Option } from "effect";
import { Argument, Command, Flag } from "effect/cli";
import { predictFiles } from "../eval/prediction.ts";
import { bindKind, kindPart } from "../kinds/registry.ts";
import { loadRun } from "../train/load_run.ts";
import { runFlags } from "./train.ts";
import type { Provider } from "../runtime/execute.ts";

export const predictCommand = Command.make("predict", {
  run: Argument.String("run-dir"),
  images: Argument.String("image").pipe(Argument.variadic({ min: 1 })),
  out: Flag.String("out").pipe(Flag.withDescription("output folder")),
  checkpoint: Flag.String("checkpoint").pipe(Flag.optional),
  exportSize: Flag.Boolean("export-size").pipe(
    Flag.withDefault(false),
    Flag.withDescription("fit to the training crop, pad, map classes back by nearest: as the exported model"),
  ),
  ...runFlags,
}, (a) =>
  Effect.scoped(Effect.gen(function* () {
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
    yield* predictFiles(predictor, a.images, a.out, { print });
  }))).pipe(
    Command.withDescription("Predict images with a trained run: what its model kind writes per image."),
  );
