/**
 * The images every evaluation of a run reads are checked before the first step, as the training split
 * is: a bad validation mask stops `train` before anything is trained or written, naming the file.
 */
import { Effect } from "effect";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import { check as assert, encodePng, put, withTempDir, writeFolderDataset } from "./data_fixtures.ts";
import { experiment } from "../dsl/experiment.ts";
import * as m from "../dsl/model.ts";
import { adamWSpec, evalConfig, trainConfig } from "../dsl/training.ts";
import { folder, testPipeline, trainPipeline } from "../dsl/dataset.ts";
import { train } from "../train/train.ts";
import type { Problem } from "../data/errors.ts";

const W = 16, H = 16;
const mask = (k: number) => Array.from({ length: W * H }, (_, i) => (i % W < 8 ? k : (k + 1) % 3));

const experimentOn = (root: string) =>
  experiment({
    name: "bad-val",
    model: m.segmenter({
      classes: 3,
      backbone: m.convNet({ widths: [8, 16] }),
      xi: null,
      psi: m.linearPsi(),
      select: m.all(),
    }),
    data: {
      dataset: folder({ root, classes: "classes.json" }),
      train: trainPipeline({ scale: [W, H], ratioRange: [1, 1], cropSize: [H, W] }),
      test: testPipeline(),
    },
    train: trainConfig({
      steps: 2,
      batchSize: 2,
      optimizer: adamWSpec({ lr: 1e-3 }),
      evalEvery: 0,
    }),
    eval: evalConfig({ examples: 2 }),
  });

Deno.test("train: a bad validation mask fails before the first step, naming the file; no run folder is left", () =>
  withTempDir(async (root) => {
    const samples = Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`t${i}`, mask(i % 3)]));
    await writeFolderDataset(root, "train", { width: W, height: H, samples });
    await writeFolderDataset(root, "val", { width: W, height: H, samples: { v0: mask(0), v1: mask(1) } });
    // v1's mask holds the value 7 in a 3-class table.
    const bad = await put(
      join(root, "annotations", "val", "v1.png"),
      encodePng(W, H, "grey8", mask(1).map((v, i) => (i < 4 ? 7 : v))),
    );
    const out = join(root, "run");
    const printed: string[] = [];
    const error = await Effect.runPromise(
      Effect.flip(train(experimentOn(root), { out, workers: 0, print: (l) => printed.push(l) })),
    ) as { _tag: string; problems?: readonly Problem[] };
    assertEquals(error._tag, "BadFiles");
    assertEquals(error.problems?.map((p) => [p.file, p.message]), [
      [bad, "mask value 7 (4 pixels) outside the class table (0..2 are classes, 255 is ignore)"],
    ]);
    assert(!existsSync(out), "nothing of the run is written: no checkpoints, no empty examples/");
    assertEquals(printed, []);
  }));
