/**
 * The grids' spec overrides combined with the image-level source options: a grid's overrides are checked by
 * the spec rules like a spec file, and the source mixes (`withImageLevelSources`, the ξ-sources rows, the
 * LarvSeg ccp+clothing source) compose with other overrides in either order.
 */
import { Effect, Exit } from "effect";
import { assert, assertEquals } from "./assert.ts";
import {
  decodeExperiment,
  type Experiment,
  withImageLevelSources,
  withOverrides,
} from "../dsl/experiment.ts";
import { imageLevelShares, imageLevelSources } from "../dsl/dataset.ts";
import { MAX_STEPS } from "../dsl/training.ts";
import { SpecError } from "../dsl/validate.ts";
import { pixelExperiment, rowExperiment, ROWS, rowSources } from "../experiments/xi-sources/grid.ts";
import * as larvseg from "../experiments/larvseg/grid.ts";
import { runExperiment } from "../grids/grid_runs.ts";

/** A batch's split and each source's file and semantics, e.g. [4, "clothing:4:partial"]. */
const mix = (e: Experiment) => {
  const sources = imageLevelSources(e.data.imageLevel);
  const { pixel, perSource } = imageLevelShares(e.train.batchSize, sources);
  return [
    pixel,
    ...sources.map((s, i) => `${s.labels.split("/").at(-2)}:${perSource[i]}:${s.semantics ?? "complete"}`),
  ];
};

const valid = (e: Experiment) => Effect.runPromiseExit(decodeExperiment(e, "test"));

Deno.test("grid runs: a grid's overrides are checked by the spec rules before a run trains", async () => {
  const spec = "experiments/xi-sources/clothing.ts";
  const run = { spec, steps: MAX_STEPS + 1, seed: 0, dir: "unused", record: "unused/eval-val.json" };
  const exit = await Effect.runPromiseExit(runExperiment(run));
  assert(Exit.isFailure(exit), "an override past the step limit was accepted");
  const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined;
  const failure = error && "error" in error ? error.error : undefined;
  assert(failure instanceof SpecError, `not a SpecError: ${String(failure)}`);
  assertEquals(failure.source, spec);
  assertEquals(failure.violations.map((v) => v.path), ["train.steps"]);
  const ok = await Effect.runPromise(runExperiment({ ...run, steps: 300 }));
  assertEquals([ok.train.steps, ok.train.seed, mix(ok)], [300, 0, [4, "clothing:4:partial"]]);
});

Deno.test("ξ-source mixes and a grid's overrides combine in either order, the pixel-labelled images kept", async () => {
  // Another protocol's override of the training (here 8 pixel-labelled images per batch, 300 steps, seed 2)
  // before or after the mix: the same experiment, valid, with each source's share of the larger batch.
  const protocol = (e: Experiment): Experiment => ({ ...e, train: { ...e.train, batchSize: 8 } });
  const mixes: Record<string, unknown> = {};
  for (const row of ROWS) {
    const before = withImageLevelSources(
      withOverrides(protocol(pixelExperiment(row)), 300, 2),
      rowSources(row),
    );
    const after = withOverrides(protocol(withImageLevelSources(pixelExperiment(row), [])), 300, 2);
    assertEquals(withImageLevelSources(after, rowSources(row)), before);
    assert(Exit.isSuccess(await valid(before)), row);
    mixes[row] = mix(before);
    // The rows as the grid trains them: the mix on the pixel experiment, 4 pixel-labelled images.
    assertEquals(mix(rowExperiment(row))[0], 4);
  }
  assertEquals(mixes, {
    pixel: [8],
    "ccp-tags": [8, "image-level:8:complete"],
    clothing: [8, "clothing:8:partial"],
    "clothing-complete": [8, "clothing:8:complete"],
    both: [8, "image-level:4:complete", "clothing:4:partial"],
  });
});

Deno.test("LarvSeg's ccp+clothing source on another experiment, after a grid's overrides", async () => {
  // ccp's image-level row with clothing/ instead of its tag photos: half of the batch, partial semantics,
  // the other settings (hidden novel classes, steps, seed) as they were.
  const ccp = withOverrides(larvseg.rowExperiment("ccp", "image-level"), 300, 1);
  const clothing = withImageLevelSources(ccp, larvseg.imageLevelSourcesOf("ccp+clothing"));
  assertEquals(mix(ccp), [4, "image-level:4:complete"]);
  assertEquals(mix(clothing), [4, "clothing:4:partial"]);
  assertEquals([clothing.train.steps, clothing.train.seed], [300, 1]);
  assertEquals(clothing.data.dataset, ccp.data.dataset);
  assert(Exit.isSuccess(await valid(clothing)));
  // The grid's own ccp+clothing row is the same source on its own novel classes.
  const row = larvseg.rowExperiment("ccp+clothing", "image-level");
  assertEquals(row.data.imageLevel, clothing.data.imageLevel);
  assertEquals(row.eval.novel, [...larvseg.clothingNovelClasses()]);
});
