/**
 * `deno task web [run-dir | training-folder | experiment | model.onnx]`: kappa's page on 127.0.0.1 —
 * segment photos with the model and fine-tune it in the tab (web/). Prints the URL and serves until
 * Ctrl-C.
 */
import { Console, Effect, Option } from "effect";
import { Argument, Command, Flag } from "effect/cli";
import { webSource } from "../web/sources.ts";
import { serveWeb } from "../web/server.ts";
import { checkpointFlag, intFlag, pathArgument } from "./flag_schema.ts";

export const WEB_BOUNDS = {
  port: { min: 0, max: 65_535 },
  shardBatches: { min: 1, max: 10_000 },
  webSteps: { min: 1, max: 100_000 },
} as const;

export const webCommand = Command.make("web", {
  source: pathArgument(
    "source",
    "a run folder, a folder written by export --training, an experiment (.ts/.json) or a kappa .onnx export",
  ).pipe(Argument.optional),
  checkpoint: checkpointFlag(),
  port: intFlag("port", WEB_BOUNDS.port, "port on 127.0.0.1 (0: any free port)").pipe(Flag.withDefault(8080)),
  shardBatches: intFlag(
    "shard-batches",
    WEB_BOUNDS.shardBatches,
    "training batches the page is given (default 4)",
  )
    .pipe(Flag.withDefault(4)),
  steps: intFlag("steps", WEB_BOUNDS.webSteps, "the page's training step budget (default 100)").pipe(
    Flag.withDefault(100),
  ),
}, (a) =>
  Effect.scoped(Effect.gen(function* () {
    const source = Option.getOrUndefined(a.source);
    const served = yield* webSource(source, Option.getOrUndefined(a.checkpoint), {
      shardBatches: a.shardBatches,
      steps: a.steps,
    });
    const server = yield* serveWeb(served, { port: a.port });
    yield* Console.log(`kappa page: ${served.manifest.title}`);
    if (served.manifest.trainingNote) yield* Console.log(served.manifest.trainingNote);
    yield* Console.log(`serving on ${server.url} (Ctrl-C stops)`);
    yield* Effect.never;
  }))).pipe(
    Command.withDescription("Serve kappa's page: segment photos and fine-tune the model in a browser tab."),
  );
