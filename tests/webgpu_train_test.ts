/**
 * The training loop on webgpu: a run stopped at step 3 (checkpoint read back from the device) and resumed
 * (state uploaded again) ends bitwise where an uninterrupted webgpu run ends — parameters, optimizer
 * moments and logged losses. The quickstart model on synthetic data at a 32×32 crop, batch 1. Skips
 * (saying why) without a webgpu adapter.
 */
import { Effect, Exit } from "effect";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "./assert.ts";
import quickstart from "../experiments/quickstart.ts";
import { experiment } from "../dsl/experiment.ts";
import { procedural, testPipeline, trainPipeline } from "../dsl/dataset.ts";
import { trainConfig } from "../dsl/training.ts";
import { train, type TrainOptions } from "../train/train.ts";
import { evaluate, type EvaluationResult } from "../eval/evaluate.ts";
import { openDataset } from "../data/open.ts";
import { value } from "../ir/value.ts";
import { deviceTestName, webgpuUnavailable } from "./webgpu_device.ts";
import { finalState } from "./run_helpers.ts";

const unavailable = await webgpuUnavailable("webgpu_train_test.ts");

const e = experiment({
  name: "quickstart-webgpu",
  model: quickstart.model,
  data: {
    dataset: procedural({
      numClasses: 11,
      ignoreIndex: 11,
      height: 40,
      width: 40,
      count: 8,
      classesPerImage: 3,
      seed: 2,
    }),
    train: trainPipeline({ scale: [40, 40], ratioRange: [0.8, 1.2], cropSize: [32, 32] }),
    test: testPipeline(),
  },
  train: trainConfig({
    ...quickstart.train,
    steps: 6,
    batchSize: 1,
    logEvery: 1,
    checkpointEvery: 3,
    evalEvery: 0,
  }),
  eval: quickstart.eval,
});

const options: TrainOptions = { workers: 0, print: () => {}, skipFinalEval: true, provider: "webgpu" };

const losses = (dir: string) =>
  readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l))
    .filter((m) => m.kind === "train").map((m) => m.loss);

Deno.test({
  name: deviceTestName(
    "webgpu train: stop at step 3, resume to 6 = never stopping, bitwise; evaluation from device state = the CPU's",
    unavailable,
  ),
  ignore: unavailable !== undefined,
  fn: async () => {
    const root = await mkdtemp(join(tmpdir(), "kappa-webgpu-train-"));
    try {
      const straight = join(root, "straight"), resumed = join(root, "resumed");
      // The uninterrupted run also evaluates at the end, from the state on the device.
      const first = await Effect.runPromiseExit(
        train(e, { ...options, out: straight, skipFinalEval: false, evalLimit: 2 }),
      );
      assert(Exit.isSuccess(first), String(first));
      const stopped = await Effect.runPromiseExit(train(e, { ...options, out: resumed, stopAfter: 3 }));
      assert(Exit.isFailure(stopped) && String(stopped.cause).includes("stopped at step 3"), String(stopped));
      const again = await Effect.runPromiseExit(train(e, { ...options, out: resumed, resume: true }));
      assert(Exit.isSuccess(again), String(again));
      const [a, b] = [await finalState(straight), await finalState(resumed)];
      assertEquals(Object.keys(a).sort(), Object.keys(b).sort());
      for (const name of Object.keys(a)) {
        const [x, y] = [a[name].data as Float32Array, b[name].data as Float32Array];
        assert(x.length === y.length && x.every((v, i) => Object.is(v, y[i])), `${name} differs`);
      }
      assertEquals(losses(resumed), losses(straight));
      assertEquals(losses(straight).length, 6);
      // The same evaluation on the CPU from the checkpoint (read back from the device) agrees.
      const onDevice = (first.value.evaluation as EvaluationResult).segmentation;
      const onHost = await Effect.runPromise(Effect.gen(function* () {
        const dataset = yield* openDataset(e.data.dataset, e.data.dataset.testSplit);
        const state = new Map(
          Object.entries(a).map(([k, t]) => [k, value("float32", t.data as Float32Array, t.shape)]),
        );
        // The run's evaluations all look at its first `evalLimit` images; so does this one.
        return (yield* evaluate(e, state, dataset.classes, { mode: "whole", workers: 0, limit: 2 }))
          .segmentation;
      }));
      console.error(`eval: mIoU webgpu ${onDevice.mIoU}, cpu ${onHost.mIoU}`);
      assert(
        Math.abs(onDevice.mIoU - onHost.mIoU) <= 1e-3,
        `mIoU ${onDevice.mIoU} on webgpu, ${onHost.mIoU} on the CPU`,
      );
      assert(
        Math.abs(onDevice.aAcc - onHost.aAcc) <= 1e-3,
        `aAcc ${onDevice.aAcc} on webgpu, ${onHost.aAcc} on the CPU`,
      );
    } finally {
      await rm(root, { recursive: true });
    }
  },
});
