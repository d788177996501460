/**
 * The training loop end to end on a small synthetic dataset: bitwise-exact resume (also after a crashed
 * checkpoint write), identical reruns, a NaN stops with a clear error, the run folder layout.
 */
import { Effect, Exit } from "effect";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "./assert.ts";
import { adamWSpec, learningRate } from "../dsl/training.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";
import { readBestRecord } from "../train/checkpoint.ts";
import { finalState, metrics, run } from "./run_helpers.ts";

const assertSameState = async (a: string, b: string) => {
  const [sa, sb] = [await finalState(a), await finalState(b)];
  assertEquals(Object.keys(sa).sort(), Object.keys(sb).sort());
  for (const name of Object.keys(sa)) {
    const [x, y] = [sa[name].data as Float32Array, sb[name].data as Float32Array];
    assert(x.length === y.length && x.every((v, i) => Object.is(v, y[i])), `${name} differs`);
  }
};

Deno.test(
  "train: stop at step 3, resume to 8 = never stopping, bitwise (parameters, moments, metrics)",
  async () => {
    const root = await mkdtemp(join(tmpdir(), "kappa-train-"));
    try {
      const e = tinyExperiment();
      const straight = join(root, "straight"), resumed = join(root, "resumed");
      assert(Exit.isSuccess(await run(e, { out: straight })));
      const stopped = await run(e, { out: resumed, stopAfter: 3 });
      assert(Exit.isFailure(stopped) && String(stopped.cause).includes("stopped at step 3"), String(stopped));
      // Without --resume the folder is refused, so nothing is overwritten.
      const refused = await run(e, { out: resumed });
      assert(Exit.isFailure(refused) && String(refused.cause).includes("pass --resume"), String(refused));
      assert(Exit.isSuccess(await run(e, { out: resumed, resume: true })));
      await assertSameState(straight, resumed);
      assertEquals(metrics(resumed), metrics(straight));
      for (const f of ["experiment.json", "meta.json", "metrics.jsonl", "train.log"]) {
        assert(existsSync(join(resumed, f)), f);
      }
      const meta = JSON.parse(readFileSync(join(resumed, "meta.json"), "utf8"));
      assertEquals(meta.seed, 0);
      assertEquals(meta.resumed.length, 1);
      assert(typeof meta.versions.onnxruntime === "string" && typeof meta.commit === "string");
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },
);

Deno.test(
  "train: a crash while writing a checkpoint resumes from the previous one, with the same result",
  async () => {
    const root = await mkdtemp(join(tmpdir(), "kappa-crash-"));
    try {
      const e = tinyExperiment();
      const straight = join(root, "straight"), crashed = join(root, "crashed");
      assert(Exit.isSuccess(await run(e, { out: straight })));
      await run(e, { out: crashed, stopAfter: 4 });
      // A later checkpoint write died midway: a truncated step file and a leftover temp file.
      const ckpts = join(crashed, "checkpoints");
      const good = readFileSync(join(ckpts, "step-000004.safetensors"));
      await writeFile(join(ckpts, "step-000006.safetensors"), good.subarray(0, good.length / 2));
      await writeFile(join(ckpts, "step-000006.safetensors.tmp-999-abc"), good.subarray(0, 100));
      assert(Exit.isSuccess(await run(e, { out: crashed, resume: true })));
      await assertSameState(straight, crashed);
      assertEquals(metrics(crashed), metrics(straight));
      assert(readFileSync(join(crashed, "train.log"), "utf8").includes("step-000006.safetensors"));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },
);

Deno.test(
  "train: rerunning with the same seed gives identical metrics; another seed differs",
  async () => {
    const root = await mkdtemp(join(tmpdir(), "kappa-rerun-"));
    try {
      const e = tinyExperiment({ steps: 4 });
      for (const d of ["a", "b"]) assert(Exit.isSuccess(await run(e, { out: join(root, d) })));
      assertEquals(metrics(join(root, "a")), metrics(join(root, "b")));
      assert(Exit.isSuccess(await run(tinyExperiment({ steps: 4, seed: 1 }), { out: join(root, "c") })));
      assert(JSON.stringify(metrics(join(root, "c"))) !== JSON.stringify(metrics(join(root, "a"))));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },
);

Deno.test("train: a NaN loss stops with an error naming the step and the loss term", async () => {
  const root = await mkdtemp(join(tmpdir(), "kappa-nan-"));
  try {
    const e = tinyExperiment({
      optimizer: adamWSpec({ lr: 1e30 }),
      schedule: { _tag: "Constant" },
      checkpointEvery: 1,
    });
    const exit = await run(e, { out: root });
    assert(Exit.isFailure(exit));
    const text = String(exit.cause);
    assert(
      /step \d+: loss term "loss[.a-zA-Z]*" is (NaN|-?Infinity); stopped, the last checkpoint is kept/.test(
        text,
      ),
      text,
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

Deno.test("train: every evaluation uses one recorded image set, in percent; best is judged on it; each prints a line", async () => {
  const root = await mkdtemp(join(tmpdir(), "kappa-evalset-"));
  try {
    const printed: string[] = [];
    const e = tinyExperiment({ steps: 4, evalEvery: 2 });
    const exit = await run(e, {
      out: root,
      evalLimit: 3,
      skipFinalEval: false,
      print: (l) => printed.push(l),
    });
    assert(Exit.isSuccess(exit), String(exit));
    const evals = metrics(root).filter((l) => l.kind === "eval");
    // Periodic (step 2) and final (step 4) evaluations: the same split and images, metrics in percent.
    assertEquals(evals.map((l) => [l.step, l.split, l.images, l.units]), [
      [2, "val", 3, "percent"],
      [4, "val", 3, "percent"],
    ]);
    // The record's name says it holds the first 3 images (eval/eval_record.ts, `evalRecordName`).
    const record = JSON.parse(readFileSync(join(root, "eval-val-first3.json"), "utf8"));
    assertEquals([record.split, record.images, record.units, record.step], ["val", 3, "percent", 4]);
    assertEquals(record.checkpoint, join(root, "checkpoints", "step-000004.safetensors"));
    // The final table is the final evaluation's: same numbers as its metrics line.
    assertEquals([record.mIoU, record.aAcc, record.mAcc, record.mAP], [
      evals[1].mIoU,
      evals[1].aAcc,
      evals[1].mAcc,
      evals[1].mAP,
    ]);
    // mIoU is the mean of the per-class IoUs, in the same unit (hand-computed percent: eval_metrics_table_test).
    const ious = record.classes.map((c: { iou: number | null }) => c.iou).filter((x: number | null) =>
      x !== null
    );
    assert(Math.abs(record.mIoU - ious.reduce((a: number, b: number) => a + b, 0) / ious.length) < 1e-9);
    // best.safetensors names the image set it was judged on and holds the better of the two evaluations.
    const best = await Effect.runPromise(readBestRecord(join(root, "checkpoints")));
    assertEquals(best?.metric, "mIoU (val, 3 images)");
    assertEquals(best?.value, Math.max(evals[0].mIoU, evals[1].mIoU));
    // One terminal line per evaluation, with split, image count, mIoU, mAP and ξ's recall@κ (2 decimals,
    // percent; κ = the model's top-κ, as metrics.jsonl records it).
    const lines = printed.filter((l) => l.startsWith("eval step"));
    assertEquals(
      lines,
      evals.map((l) =>
        `eval step ${l.step} (val, 3 images): mIoU ${l.mIoU.toFixed(2)} aAcc ${l.aAcc.toFixed(2)} mAcc ${
          l.mAcc.toFixed(2)
        } mAP ${l.mAP.toFixed(2)} recall@${l.recallK} ${l.recallAtK.toFixed(2)}`
      ),
    );
    assert(
      evals.every((l) => l.recallK === 4 && l.recallAtK >= 0 && l.recallAtK <= 100),
      JSON.stringify(evals),
    );
    const log = readFileSync(join(root, "train.log"), "utf8");
    for (const l of lines) assert(log.includes(l), l);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

Deno.test("train: an unavailable provider (cuda) fails before anything is written", async () => {
  const root = await mkdtemp(join(tmpdir(), "kappa-cuda-"));
  try {
    const out = join(root, "run");
    const exit = await run(tinyExperiment({ steps: 2 }), { out, provider: "cuda" });
    assert(Exit.isFailure(exit) && /cuda/i.test(String(exit.cause)), String(exit));
    assertEquals(existsSync(out), false);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

Deno.test("train: --resume names each changed field; --extend-steps continues to the new total on the recomputed schedule", async () => {
  const root = await mkdtemp(join(tmpdir(), "kappa-extend-"));
  try {
    const e = tinyExperiment({ steps: 4 });
    assert(Exit.isSuccess(await run(e, { out: root })));
    const changed = await run(tinyExperiment({ steps: 6, seed: 3 }), { out: root, resume: true });
    assert(Exit.isFailure(changed));
    const text = String(changed.cause);
    assert(text.includes("train.seed: 0 → 3; train.steps: 4 → 6; start a new run with --out"), text);
    const stepsOnly = await run(tinyExperiment({ steps: 6 }), { out: root, resume: true });
    assert(Exit.isFailure(stepsOnly) && String(stepsOnly.cause).includes("train.steps: 4 → 6; to continue"));
    const shorter = await run(e, { out: root, extendSteps: 3 });
    assert(Exit.isFailure(shorter) && String(shorter.cause).includes("cannot shorten"), String(shorter));

    assert(Exit.isSuccess(await run(e, { out: root, extendSteps: 6 })));
    const train = metrics(root).filter((l) => l.kind === "train");
    const schedule = e.train.schedule, lr = e.train.optimizer.lr;
    // Steps up to the resume point kept the old schedule (over 4); later ones follow it over 6.
    assertEquals(train.map((l) => [l.step, l.lr]), [
      [2, learningRate(schedule, lr, 2, 4)],
      [4, learningRate(schedule, lr, 4, 4)],
      [6, learningRate(schedule, lr, 6, 6)],
    ]);
    assert(learningRate(schedule, lr, 6, 6) !== learningRate(schedule, lr, 6, 4));
    assertEquals(JSON.parse(readFileSync(join(root, "experiment.json"), "utf8")).train.steps, 6);
    const meta = JSON.parse(readFileSync(join(root, "meta.json"), "utf8"));
    assertEquals(meta.resumed.at(-1).steps, { from: 4, to: 6 });
    assert(existsSync(join(root, "checkpoints", "step-000006.safetensors")));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
