/**
 * Checkpoints that cannot be used are refused where they are read, naming the file and the tensor:
 * missing parameters (eval / predict / export would run with random initial values), NaN or infinite
 * values (eval, predict, export, resume), a supported but wrong dtype; and a training state that went
 * NaN while the loss was still finite is never written as a checkpoint. Each case is a checkpoint made
 * by hand from a tiny trained run.
 */
import { Effect, Exit } from "effect";
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { cli } from "./cli_runner.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";
import { run } from "./run_helpers.ts";
import { loadCheckpoint } from "../train/checkpoint.ts";
import { loadRun } from "../train/load_run.ts";
import { encodeSafetensors, type Tensor } from "../io/safetensors.ts";
import { adamWSpec } from "../dsl/training.ts";

const CAMVID_IMAGE = "../shared/data/camvid/images/val/0016E5_07959.jpg";
const TENSOR = "model.backbone.blocks.0.mlp.fc1.weight";

/** A trained tiny run (4 steps, checkpoint at step 4) and its newest checkpoint's contents. */
const trainedRun = async (root: string) => {
  const dir = join(root, "run");
  const e = tinyExperiment({ steps: 4 });
  assert(Exit.isSuccess(await run(e, { out: dir })));
  const file = join(dir, "checkpoints", "step-000004.safetensors");
  return { dir, e, file, ckpt: await Effect.runPromise(loadCheckpoint(file)) };
};

const writeCheckpoint = (file: string, tensors: Record<string, Tensor>, metadata: Record<string, string>) =>
  writeFile(file, encodeSafetensors(tensors, metadata));

/** The error of a failed Effect, as text. */
const failure = async (effect: Effect.Effect<unknown, unknown>) => {
  const exit = await Effect.runPromiseExit(effect);
  assert(Exit.isFailure(exit), "expected a failure");
  return String(exit.cause);
};

const withRoot = (name: string, body: (root: string) => Promise<void>) =>
  Deno.test(name, async () => {
    const root = await mkdtemp(join(tmpdir(), "kappa-ckload-"));
    try {
      await body(root);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

withRoot(
  "checkpoint load: missing parameters are an error naming the file, the count and the first names (eval, predict, export)",
  async (root) => {
    const { dir, ckpt } = await trainedRun(root);
    // Only the optimizer moments: no parameter of the model.
    const moments = join(root, "moments.safetensors");
    const kept = Object.fromEntries(
      Object.entries(ckpt.tensors).filter(([name]) => !name.startsWith("model.")),
    );
    const parameters = Object.keys(ckpt.tensors).filter((n) => n.startsWith("model.")).sort();
    await writeCheckpoint(moments, kept, ckpt.metadata);
    const message = await failure(loadRun(dir, moments));
    // The first five named, the rest counted.
    const named = new RegExp(
      `${moments}: lacks ${parameters.length} of the model's ${parameters.length} parameters: ` +
        `((model\\.[\\w.]+), ){4}(model\\.[\\w.]+) and ${parameters.length - 5} more`,
    ).exec(message);
    assert(named, message);
    assert(named[0].match(/model\.[\w.]+/g)!.every((n) => parameters.includes(n)), named[0]);
    for (
      const args of [
        ["eval", dir, "--checkpoint", moments, "--workers", "0", "--limit", "1"],
        ["predict", dir, CAMVID_IMAGE, "--out", join(root, "pred"), "--checkpoint", moments],
        ["export", dir, join(root, "m.onnx"), "--checkpoint", moments],
      ]
    ) {
      const r = await cli(...args);
      assertEquals(r.code, 1, `${args[0]} exited ${r.code}: ${r.stdout}`);
      const lines = r.stderr.trim().split("\n");
      assertEquals(lines.length, 1, r.stderr);
      assert(lines[0].startsWith(`${moments}: lacks ${parameters.length} of the model's`), lines[0]);
    }
    assert(!existsSync(join(root, "m.onnx")));

    // One parameter missing: named.
    const one = join(root, "one.safetensors");
    const { [TENSOR]: _dropped, ...rest } = ckpt.tensors;
    await writeCheckpoint(one, rest, ckpt.metadata);
    assert((await failure(loadRun(dir, one))).includes(`${one}: lacks 1 of the model's`), TENSOR);
    assert((await failure(loadRun(dir, one))).includes(TENSOR));
  },
);

withRoot(
  "checkpoint load: NaN or infinite values are refused naming the tensor (eval, predict, export, resume)",
  async (root) => {
    const { dir, e, file, ckpt } = await trainedRun(root);
    const poisoned = (v: number) => {
      const t = ckpt.tensors[TENSOR];
      const data = Float32Array.from(t.data as Float32Array);
      data[5] = v;
      return { ...ckpt.tensors, [TENSOR]: { ...t, data } };
    };
    const nan = join(root, "nan.safetensors");
    await writeCheckpoint(nan, poisoned(NaN), ckpt.metadata);
    const message = await failure(loadRun(dir, nan));
    assert(message.includes(`${nan}: tensor "${TENSOR}" holds NaN (1 of 1024 values)`), message);
    const inf = join(root, "inf.safetensors");
    await writeCheckpoint(inf, poisoned(-Infinity), ckpt.metadata);
    assert((await failure(loadRun(dir, inf))).includes(`tensor "${TENSOR}" holds -Infinity`));
    for (
      const args of [
        ["predict", dir, CAMVID_IMAGE, "--out", join(root, "pred"), "--checkpoint", nan],
        ["export", dir, join(root, "m.onnx"), "--checkpoint", nan],
      ]
    ) {
      const r = await cli(...args);
      assertEquals(r.code, 1, `${args[0]} exited ${r.code}: ${r.stdout}`);
      assert(r.stderr.trim().startsWith(`${nan}: tensor "${TENSOR}" holds NaN`), r.stderr);
    }
    assert(!existsSync(join(root, "m.onnx")));

    // The newest checkpoint went NaN: --resume refuses it instead of reloading it forever.
    await writeCheckpoint(file, poisoned(NaN), ckpt.metadata);
    const resumed = await run({ ...e, train: { ...e.train, steps: 6 } }, { out: dir, extendSteps: 6 });
    assert(Exit.isFailure(resumed));
    assert(String(resumed.cause).includes(`${file}: tensor "${TENSOR}" holds NaN`), String(resumed.cause));
  },
);

withRoot(
  "checkpoint load: a wrong dtype (I32 for F32) names the file, the tensor and both dtypes (eval, resume)",
  async (root) => {
    const { dir, e, file, ckpt } = await trainedRun(root);
    const t = ckpt.tensors[TENSOR];
    const wrong = {
      ...ckpt.tensors,
      [TENSOR]: { ...t, dtype: "I32" as const, data: Int32Array.from(t.data as Float32Array) },
    };
    const i32 = join(root, "i32.safetensors");
    await writeCheckpoint(i32, wrong, ckpt.metadata);
    const r = await cli("eval", dir, "--checkpoint", i32, "--workers", "0", "--limit", "1");
    assertEquals(r.code, 1, r.stdout);
    assertEquals(r.stderr.trim(), `${i32}: tensor "${TENSOR}" is I32, the model expects F32`);

    await writeCheckpoint(file, wrong, ckpt.metadata);
    const resumed = await run({ ...e, train: { ...e.train, steps: 6 } }, { out: dir, extendSteps: 6 });
    assert(Exit.isFailure(resumed));
    assert(
      String(resumed.cause).includes(`${file}: tensor "${TENSOR}" is I32, the model expects F32`),
      String(resumed.cause),
    );
  },
);

withRoot(
  "train: a state that went NaN with a finite loss is not checkpointed; the error names the step and a tensor",
  async (root) => {
    // A float32 learning rate of 1e39 is +Infinity: step 1's loss is finite, its update is not.
    const e = tinyExperiment({
      steps: 4,
      optimizer: adamWSpec({ lr: 1e39 }),
      schedule: { _tag: "Constant" },
      checkpointEvery: 1,
    });
    const dir = join(root, "nan");
    const exit = await run(e, { out: dir });
    assert(Exit.isFailure(exit));
    const text = String(exit.cause);
    assert(
      /step 1: state "[^"]+" holds [-A-Za-z, ]+ \(\d+ of \d+ values\) after a finite loss; stopped, the last checkpoint is kept/
        .test(text),
      text,
    );
    assertEquals(readdirSync(join(dir, "checkpoints")).filter((f) => f.startsWith("step-")), []);
  },
);
