/**
 * Merging's class thresholds chosen on the training split (`mergeCalibration`): the candidates, the
 * choice (best training PQ, the first on ties), specs without the field keep their hash, and an
 * evaluation with it equals one with the chosen thresholds given outright.
 */
import { Effect } from "effect";
import { existsSync } from "node:fs";
import { assert, assertEquals } from "./assert.ts";
import {
  bestCandidate,
  calibratedMerge,
  calibrationCandidates,
  evaluatePanoptic,
} from "../eval/panoptic_eval.ts";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { decodeExperiment, experimentHash } from "../dsl/experiment.ts";
import { openDataset } from "../data/open.ts";
import { requireKind } from "../kinds/registry.ts";
import { panopticKind } from "../kinds/panoptic.ts";
import { tinyPanoptic } from "./fixtures/tiny_panoptic.ts";
import type { MergeCalibration, PanopticSegmenter } from "../dsl/model.ts";
import { parametersDigest } from "../eval/parameters_digest.ts";
import { train } from "../train/train.ts";
import { loadRun } from "../train/load_run.ts";
import { cli } from "./cli_runner.ts";
import { value } from "../ir/value.ts";

const HAVE_COCO = existsSync("../shared/data/coco133/panoptic");

Deno.test("calibration: thing-major candidates on top of merge; the best PQ wins, the first on ties", () => {
  const merge = {
    maskThreshold: 0.4,
    thingThreshold: 0.7,
    stuffThreshold: 0.5,
    overlapThreshold: 0.8,
    minArea: 0,
  };
  const c = calibrationCandidates(merge, { thingThresholds: [0.7, 0.3], stuffThresholds: [0.5, 0.2, 0.1] });
  assertEquals(c.map((m) => [m.thingThreshold, m.stuffThreshold]), [
    [0.7, 0.5],
    [0.7, 0.2],
    [0.7, 0.1],
    [0.3, 0.5],
    [0.3, 0.2],
    [0.3, 0.1],
  ]);
  assert(c.every((m) => m.maskThreshold === 0.4 && m.overlapThreshold === 0.8 && m.minArea === 0));
  assertEquals(bestCandidate([0, 0.02, 0.05, 0.05, 0.01]), 2);
  assertEquals(bestCandidate([0, 0, 0]), 0); // all tied: DESIGN.md's pair, listed first, stays
  assertEquals(bestCandidate([NaN, 0.01, NaN]), 1);
  assertEquals(bestCandidate([]), -1);
});

Deno.test("calibration: optional in the spec (absent: the hash of a spec without it is unchanged)", async () => {
  const plain = tinyPanoptic();
  const calibrated = tinyPanoptic({}, {
    mergeCalibration: { thingThresholds: [0.7, 0.2], stuffThresholds: [0.5] },
  });
  const decoded = await Effect.runPromise(decodeExperiment(JSON.parse(JSON.stringify(calibrated)), "test"));
  assertEquals(decoded.model, calibrated.model);
  assert(!("mergeCalibration" in plain.model));
  assert(experimentHash(plain) !== experimentHash(calibrated));
  const bad = {
    ...calibrated,
    model: { ...calibrated.model, mergeCalibration: { thingThresholds: [1.5], stuffThresholds: [0.5] } },
  };
  const exit = await Effect.runPromiseExit(decodeExperiment(JSON.parse(JSON.stringify(bad)), "test"));
  assert(exit._tag === "Failure", "a threshold above 1 must be refused");
});

Deno.test({
  name: "calibration: chosen on train2017 (all 100 images), then val evaluated with the chosen pair",
  ignore: !HAVE_COCO,
  fn: async () => {
    const e = await Effect.runPromise(requireKind(
      tinyPanoptic({}, {
        // A threshold of 0 pastes every query: the candidates differ on what they keep.
        mergeCalibration: { thingThresholds: [0.7, 0], stuffThresholds: [0.5, 0] },
      }),
      panopticKind,
      "eval",
    ));
    const classes = (await Effect.runPromise(openDataset(e.data.dataset, "val2017"))).classes;
    const state = new Map(); // the initial parameters (seeded): the mechanics, not accuracy
    const r = await Effect.runPromise(evaluatePanoptic(e, state, classes, { limit: 3, workers: 0 }));
    const cal = r.calibration!;
    assertEquals([cal.split, cal.images, cal.candidates.length], ["train2017", 100, 4]);
    const best = bestCandidate(cal.candidates.map((c) => c.pq));
    assertEquals([cal.thingThreshold, cal.stuffThreshold], [
      cal.candidates[best].thingThreshold,
      cal.candidates[best].stuffThreshold,
    ]);
    const given = await Effect.runPromise(evaluatePanoptic(e, state, classes, {
      limit: 3,
      workers: 0,
      merge: { ...e.model.merge, thingThreshold: cal.thingThreshold, stuffThreshold: cal.stuffThreshold },
    }));
    assertEquals(given.calibration, undefined);
    assertEquals(r.images, 3);
    assertEquals(r.pq, given.pq);
    assertEquals(r.segmentation, given.segmentation);
  },
});

Deno.test("calibration: predict and export read the pair an evaluation of the same weights chose", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-calibrated-"));
  try {
    const calibration: MergeCalibration = { thingThresholds: [0.7, 0.2], stuffThresholds: [0.5, 0.1] };
    const calibrated = await Effect.runPromise(
      requireKind(tinyPanoptic({}, { mergeCalibration: calibration }), panopticKind, "predict"),
    );
    const plain = await Effect.runPromise(requireKind(tinyPanoptic(), panopticKind, "predict"));
    const weights = (x: number) => new Map([["model.w", value("float32", Float32Array.of(x), [1])]]);
    const [best, other] = [parametersDigest(weights(1)), parametersDigest(weights(2))];
    // No record yet: the spec's thresholds.
    const merge = (e: typeof calibrated, digest: string) =>
      Effect.runPromise(calibratedMerge(dir, e, digest));
    assertEquals(await merge(calibrated, best), { merge: calibrated.model.merge });
    // A record of other weights (`eval --checkpoint` of another step) does not apply to these.
    await writeFile(
      join(dir, "eval-val2017-step2.json"),
      JSON.stringify({ parameters: other, calibration: { thingThreshold: 0.2, stuffThreshold: 0.1 } }),
    );
    assertEquals(await merge(calibrated, best), { merge: calibrated.model.merge });
    assertEquals(await merge(calibrated, other), {
      merge: { ...calibrated.model.merge, thingThreshold: 0.2, stuffThreshold: 0.1 },
      from: join(dir, "eval-val2017-step2.json"),
    });
    // A model without mergeCalibration keeps its own thresholds whatever the folder holds.
    assertEquals(await merge(plain, other), { merge: plain.model.merge });
    // A record cut short is an error naming it, not a bare SyntaxError, whichever weights it is of.
    const record = join(dir, "eval-val2017.json");
    await writeFile(record, '{"calibration": {"thingThr');
    for (const digest of [best, other]) {
      const corrupt = await Effect.runPromise(Effect.flip(calibratedMerge(dir, calibrated, digest)));
      assert(corrupt.message.startsWith(`${record}: not JSON: Unterminated string`), corrupt.message);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test({
  name: "calibration: export and predict of a checkpoint never take the thresholds calibrated on another one",
  ignore: !HAVE_COCO,
  fn: async () => {
    const root = await mkdtemp(join(tmpdir(), "kappa-calibration-checkpoint-"));
    try {
      const dir = join(root, "run");
      const e = tinyPanoptic({ steps: 4, checkpointEvery: 2 }, {
        mergeCalibration: { thingThresholds: [0.7, 0.2], stuffThresholds: [0.5, 0.1] },
      });
      await Effect.runPromise(train(e, { out: dir, workers: 0, print: () => {}, skipFinalEval: true }));
      // What `eval --checkpoint step-000002` leaves: a record of step 2's weights with the pair it chose.
      const other = join(dir, "checkpoints", "step-000002.safetensors");
      const otherRun = await Effect.runPromise(loadRun(dir, other));
      await writeFile(
        join(dir, "eval-val2017.json"),
        JSON.stringify({
          split: "val2017",
          step: 2,
          checkpoint: other,
          parameters: parametersDigest(otherRun.state),
          calibration: { split: "train2017", thingThreshold: 0.2, stuffThreshold: 0.1 },
        }),
      );
      const { merge } = e.model as PanopticSegmenter;
      const spec = JSON.stringify(merge);
      const calibrated = JSON.stringify({ ...merge, thingThreshold: 0.2, stuffThreshold: 0.1 });
      // The default checkpoint (the newest, step 4): the spec's thresholds, and a line saying why.
      const newest = await cli("export", dir, join(root, "newest.onnx"));
      assertEquals(newest.code, 0, newest.stderr);
      assert(newest.stdout.includes(`meta   kappa.merge = ${spec}`), newest.stdout);
      assert(newest.stdout.includes("no evaluation of this checkpoint"), newest.stdout);
      const predicted = await cli(
        "predict",
        dir,
        "../shared/data/coco133/images/val2017/000000000139.jpg",
        "--out",
        join(root, "pred"),
      );
      assertEquals(predicted.code, 0, predicted.stderr);
      assert(predicted.stdout.includes("merging with the spec's thresholds"), predicted.stdout);
      // Step 2 itself: the pair chosen on it.
      const own = await cli("export", dir, join(root, "step2.onnx"), "--checkpoint", other);
      assertEquals(own.code, 0, own.stderr);
      assert(own.stdout.includes(`meta   kappa.merge = ${calibrated}`), own.stdout);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },
});
