/**
 * Builds a synthetic run folder in a temp directory from a few real CamVid validation images and
 * renders its report, to look at the report without training anything:
 *
 *   npx --yes deno@2.9.6 run -A scripts/demo-report.ts [camvid dir] [--screenshot out.png]
 *
 * The training curves are made up (a decaying loss with noise, warmup + poly learning rate); the
 * "predictions" are the ground truth with deliberate damage (shifted, with blocks of wrong classes), and
 * the per-class numbers are computed from them by the real metrics code. Nothing is written to the repo.
 */
import { Effect } from "effect";
import { mkdir, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { random } from "../core/random.ts";
import { colorizeMask, overlay, readImageRgb, type Rgb, writePng } from "../eval/colorize.ts";
import { makeEvalRecord, writeEvalRecord } from "../eval/eval_record.ts";
import { formatMetricsTable } from "../eval/metrics_table.ts";
import { segmentationAccumulator } from "../eval/segmentation_metrics.ts";
import { writeReport } from "../train/report.ts";
import { screenshotHtml } from "./screenshot-report.ts";

const args = [...Deno.args];
const shotAt = args.indexOf("--screenshot");
const screenshot = shotAt >= 0 ? args.splice(shotAt, 2)[1] : undefined;
const camvid = args[0] ?? new URL("../../shared/data/camvid", import.meta.url).pathname;

const classes = JSON.parse(await readFile(join(camvid, "classes.json"), "utf8")) as {
  ignore_index: number;
  classes: { name: string; color: Rgb }[];
};
const names = classes.classes.map((c) => c.name);
const colors = classes.classes.map((c) => c.color);
const K = names.length;
const IGNORE = classes.ignore_index;

const readLabels = async (file: string) => {
  const { data, info } = await sharp(file).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { labels: Int32Array.from(data), width: info.width, height: info.height };
};

/** Ground truth shifted right by `shift` pixels, plus a few rectangles of a wrong class. */
const damage = (labels: Int32Array, width: number, height: number, seed: number) => {
  const rng = random(seed, 7);
  const pred = new Int32Array(labels.length);
  const shift = 4 + rng.int(8);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const l = labels[y * width + Math.max(0, x - shift)];
      pred[y * width + x] = l === IGNORE ? rng.int(K) : l;
    }
  }
  for (let b = 0; b < 6; b++) {
    const w = 20 + rng.int(60), h = 15 + rng.int(40), x0 = rng.int(width - w), y0 = rng.int(height - h);
    const wrong = rng.int(K);
    for (let y = y0; y < y0 + h; y++) pred.fill(wrong, y * width + x0, y * width + x0 + w);
  }
  return pred;
};

const run = await mkdtemp(join(tmpdir(), "kappa-demo-run-"));

// Examples and eval-val.json from damaged ground truth of the first val images.
const valImages = (await readdir(join(camvid, "images", "val"))).sort().slice(0, 12);
await mkdir(join(run, "examples"));
const accumulator = segmentationAccumulator({ numClasses: K, ignoreIndex: IGNORE });
for (const [i, name] of valImages.entries()) {
  const id = name.replace(/\.[a-z]+$/, "");
  const { labels, width, height } = await readLabels(join(camvid, "annotations", "val", `${id}.png`));
  const pred = damage(labels, width, height, i);
  accumulator.add(pred, labels);
  if (i >= 4) continue;
  const image = await Effect.runPromise(readImageRgb(join(camvid, "images", "val", name)));
  const predRgb = colorizeMask(pred, width, height, colors, IGNORE);
  const write = (role: string, rgb: Uint8Array) =>
    writePng(join(run, "examples", `${id}-${role}.png`), rgb, width, height);
  await Effect.runPromise(write("image", image.rgb));
  await Effect.runPromise(write("label", colorizeMask(labels, width, height, colors, IGNORE)));
  await Effect.runPromise(write("pred", predRgb));
  await Effect.runPromise(write("overlay", overlay(image.rgb, predRgb, 0.5)));
}
const segmentation = accumulator.summary();
// metrics.jsonl: 1000 steps of made-up training, evaluation every 200 steps.
const rng = random(2024, 1);
const lines: string[] = [];
for (let step = 10; step <= 1000; step += 10) {
  const pixel = 1.9 * Math.exp(-step / 280) + 0.42 + 0.06 * (rng.uniform() - 0.5);
  const multilabel = 0.35 * Math.exp(-step / 180) + 0.04 + 0.01 * (rng.uniform() - 0.5);
  const lr = step <= 100 ? 1e-3 * (step / 100) : 1e-3 * (1 - (step - 100) / 900) ** 0.9;
  lines.push(JSON.stringify({
    kind: "train",
    step,
    epoch: Math.floor(step / 367),
    lr,
    loss: pixel + multilabel,
    terms: { pixel, multilabel },
    imagesPerSecond: 11.5 + 1.5 * rng.uniform(),
    elapsedSeconds: step * 0.69,
  }));
  if (step % 200 === 0) {
    // Earlier evaluations climb towards the real numbers computed for the last one.
    const progress = 0.35 + 0.65 * Math.sqrt(step / 1000);
    lines.push(JSON.stringify({
      kind: "eval",
      step,
      split: "val",
      images: valImages.length,
      units: "percent",
      mIoU: 100 * segmentation.mIoU * progress,
      aAcc: 100 * segmentation.aAcc * progress,
      mAcc: 100 * segmentation.mAcc * progress,
      mAP: 65 * progress,
    }));
  }
}
await writeFile(join(run, "metrics.jsonl"), lines.join("\n") + "\n");

console.log(formatMetricsTable({ classNames: names, segmentation, mAP: 65 }));
await Effect.runPromise(writeEvalRecord(
  run,
  makeEvalRecord({
    split: "val",
    images: valImages.length,
    step: 1000,
    checkpoint: "checkpoints/step-001000.safetensors",
    mode: "whole",
    classNames: names,
    segmentation,
    mAP: 65,
  }),
));

const report = await Effect.runPromise(writeReport(run, { generatedAt: new Date().toISOString() }));
console.log(`wrote ${report}`);
if (screenshot) {
  await screenshotHtml(report, screenshot);
  console.log(`wrote ${screenshot}`);
}
