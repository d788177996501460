/**
 * Pretrained backbones as a user meets them: `deno task classify` on the provided ImageNet MobileNetV2
 * (the ten check images, each expected class first, with the reference probability), the input-scaling
 * rule at validation, a weights file that does not fit, and a segmenter whose training starts from the
 * file's weights.
 */
import { Effect } from "effect";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { cli } from "./cli_runner.ts";
import { CHECK, CHECK_IMAGES, WEIGHTS } from "./fixtures/imagenet_check.ts";
import { assert, assertClose, assertEquals } from "./assert.ts";
import * as m from "../dsl/model.ts";
import { decodeExperiment, experiment, experimentJson } from "../dsl/experiment.ts";
import { procedural, testPipeline, trainPipeline } from "../dsl/dataset.ts";
import { adamWSpec, evalConfig, trainConfig } from "../dsl/training.ts";
import { describeModel } from "../interpret/describe.ts";
import { readSafetensorsFile } from "../weights/import.ts";
import { loadRun } from "../train/load_run.ts";

Deno.test("classify: the ten check images, each expected class first, at the reference probability (SAME padding)", async () => {
  const r = await cli("classify", WEIGHTS, ...CHECK_IMAGES.map((i) => `${CHECK}/${i.file}`), "--json");
  assertEquals(r.code, 0, r.stderr);
  const results: { file: string; top: { class: number; name: string; probability: number }[] }[] = JSON.parse(
    r.stdout,
  );
  assertEquals(results.length, 10);
  for (const [i, expected] of CHECK_IMAGES.entries()) {
    const [first] = results[i].top;
    assertEquals(first.class, expected.class, results[i].file);
    // imagenet_classes.txt gives each class's synonyms ("ringneck snake, ring-necked snake, ring snake").
    assert(first.name.startsWith(expected.name), `${first.name} for ${expected.name}`);
    // The reference's preprocessing, with libvips' bilinear resize (the spaniel differs most: 0.029).
    assertClose(first.probability, expected.p_same_padding, { atol: 0.03, message: expected.file });
    assertEquals(results[i].top.length, 5);
  }
});

Deno.test("classify: symmetric padding (torchvision's) gives the reference's symmetric-padding probability", async () => {
  const img = CHECK_IMAGES[1];
  const r = await cli("classify", WEIGHTS, `${CHECK}/${img.file}`, "--padding", "symmetric", "--json");
  assertEquals(r.code, 0, r.stderr);
  const [first] = JSON.parse(r.stdout)[0].top;
  assertEquals(first.class, img.class);
  assertClose(first.probability, img.p_symmetric_padding, { atol: 0.02 });
});

Deno.test("classify: a weights file that does not exist, or is not safetensors, is one line naming it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-weights-"));
  try {
    const missing = await cli("classify", join(dir, "nope.safetensors"), `${CHECK}/${CHECK_IMAGES[0].file}`);
    assertEquals(missing.code, 1);
    assertEquals(missing.stderr.trim(), `${join(dir, "nope.safetensors")}: weights file does not exist`);
    const bogus = join(dir, "bogus.safetensors");
    await writeFile(bogus, "not a safetensors file at all");
    const bad = await cli("classify", bogus, `${CHECK}/${CHECK_IMAGES[0].file}`);
    assertEquals(bad.code, 1);
    assert(bad.stderr.trim().startsWith(`${bogus}: not a valid safetensors file`), bad.stderr);
    assertEquals(bad.stderr.trim().split("\n").length, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** A small segmenter on the pretrained MobileNetV2 (stride 8 → the c3 map, the first 7 blocks). */
const pretrainedSegmenter = (o: { scaling?: "imagenet" } = {}) =>
  experiment({
    name: "pretrained-tiny",
    model: m.segmenter({
      classes: 4,
      backbone: m.mobileNetV2({ outputs: ["c3"], pretrained: WEIGHTS }),
      xi: m.gapLinear(),
      psi: m.linearPsi(),
      select: m.topK(2),
      temperature: m.shared(),
      multiLabelLoss: m.asymmetricLoss({ weight: 1 }),
    }),
    data: {
      dataset: procedural({ numClasses: 4, height: 40, width: 40, count: 8, seed: 3 }),
      train: trainPipeline({
        scale: [40, 40],
        cropSize: [32, 32],
        ...(o.scaling ? {} : { mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] }),
      }),
      test: testPipeline(o.scaling ? {} : { mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] }),
    },
    train: trainConfig({ steps: 2, batchSize: 2, optimizer: adamWSpec({ lr: 1e-4 }), logEvery: 1 }),
    eval: evalConfig({ examples: 0 }),
  });

Deno.test("pretrained: a pipeline whose input scaling differs from the weights' is refused at validation", async () => {
  const result = await Effect.runPromise(
    Effect.result(decodeExperiment(pretrainedSegmenter({ scaling: "imagenet" }), "x.ts")),
  );
  assert(result._tag === "Failure");
  assertEquals(result.failure.violations.map((v) => v.path), [
    "data.train.mean",
    "data.train.std",
    "data.test.mean",
    "data.test.std",
  ]);
  assertEquals(
    result.failure.violations[0].message,
    "[123.675, 116.28, 103.53] differs from what model.backbone.pretrained expects ([127.5, 127.5, 127.5])",
  );
});

Deno.test("pretrained: describe costs the MobileNetV2 backbone (its 7 blocks to stride 8 at 32×32)", () => {
  const d = describeModel(pretrainedSegmenter().model, [32, 32]);
  const backbone = d.components.find((c) => c.component === "backbone")!;
  // torchvision's features.0..6 (stem + blocks 1..6), BatchNorm folded into conv biases: stem 896, block 1
  // 848, block 2 4,920, block 3 8,520, block 4 9,680, blocks 5 and 6 14,432 each.
  assertEquals(backbone.params, 53_728);
  assert(backbone.gflops > 0);
});

Deno.test({
  name: "pretrained: a segmenter's training starts from the file's backbone weights (BatchNorm folded)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await mkdtemp(join(tmpdir(), "kappa-pretrained-"));
    try {
      const file = join(dir, "e.json");
      await writeFile(file, experimentJson(pretrainedSegmenter()));
      const r = await cli("train", file, "--out", join(dir, "run"), "--steps", "1");
      assertEquals(r.code, 0, r.stderr);
      // After one step of lr 1e-4 the stem is still the file's folded weights to within the step size.
      const run = await Effect.runPromise(loadRun(join(dir, "run")));
      const source = await Effect.runPromise(readSafetensorsFile(WEIGHTS));
      const stem = run.state.get("model.backbone.stem.conv.weight")!.data as Float32Array;
      const original = source["features.0.0.weight"].data as Float32Array;
      const bnScale = (source["features.0.1.weight"].data as Float32Array)[0] /
        Math.sqrt((source["features.0.1.running_var"].data as Float32Array)[0] + 1e-5);
      assertEquals(stem.length, original.length);
      assertClose(stem[0], original[0] * bnScale, { atol: 2e-4 });
      const log = await Deno.readTextFile(join(dir, "run", "train.log"));
      assert(/initialized \d+ parameters from the pretrained backbone/.test(log), log);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
});
