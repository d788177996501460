/**
 * LarvSeg's mixed loader: pixel-labelled and image-level images in every batch at the spec's ratio,
 * deterministic, and identical across a resume at any batch boundary; a mixed training run resumes
 * bitwise.
 */
import { Effect, Exit, Stream } from "effect";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { encodePng, gradient, put, tempDir } from "./data_fixtures.ts";
import { imageLevelData, procedural, testPipeline, trainPipeline } from "../dsl/dataset.ts";
import { decodeExperiment, type Experiment, experiment } from "../dsl/experiment.ts";
import * as m from "../dsl/model.ts";
import { adamWSpec, evalConfig, trainConfig } from "../dsl/training.ts";
import { mixedTrainLoader } from "../data/mixed_loader.ts";
import { readImageLevelLabels } from "../data/image_level.ts";
import { dataCommand, formatImageLevel } from "../data/command.ts";
import { proceduralNames } from "../data/procedural.ts";
import type { Batch } from "../data/batch.ts";
import { train } from "../train/train.ts";
import { loadCheckpoint } from "../train/checkpoint.ts";

const K = 4;
const TAGS: Record<string, number[]> = {
  "p0.png": [0, 1],
  "p1.png": [2],
  "p2.png": [1, 3],
  "p3.png": [0, 2, 3],
  "p4.png": [3],
};

/** Five 20×20 tag photos and their labels.json in a temp folder. */
const writeTags = async (root: string): Promise<string> => {
  let seed = 10;
  for (const name of Object.keys(TAGS)) {
    await put(join(root, "images", name), encodePng(20, 20, "rgb8", gradient(20, 20, seed++)));
  }
  return await put(join(root, "labels.json"), JSON.stringify({ images: "images", labels: TAGS }));
};

const dataset = procedural({
  numClasses: K,
  height: 16,
  width: 16,
  count: 6,
  seed: 2,
  hidden: [proceduralNames(K)[3]],
  imageLabels: "image",
});
const pipeline = trainPipeline({ scale: [16, 16], ratioRange: [0.8, 1.2], cropSize: [16, 16] });

const take = (labels: string, n: number, start?: { epoch: number; index: number }) =>
  Effect.runPromise(
    Stream.runCollect(
      mixedTrainLoader(dataset, pipeline, imageLevelData({ labels, ratio: 0.5 }), {
        batchSize: 4,
        seed: 7,
        workers: 0,
        prefetch: 0,
        ...(start ? { start } : {}),
      }).pipe(Stream.take(n)),
    ),
  ).then((c) => Array.from(c) as Batch[]);

const same = (a: Batch, b: Batch) => {
  assertEquals(a.ids, b.ids);
  assertEquals(a.position, b.position);
  assertEquals(Array.from(a.pixelLabelled!), Array.from(b.pixelLabelled!));
  assertEquals(Array.from(a.imageLabels!), Array.from(b.imageLabels!));
  assert(a.images.every((v, i) => Object.is(v, b.images[i])), "images differ");
  assert(a.labels.every((v, i) => v === b.labels[i]), "labels differ");
};

Deno.test("mixed loader: 2 pixel-labelled + 2 image-level images per batch, tags as labels, no pixels", async () => {
  const root = await tempDir("kappa-mixed-");
  try {
    const labels = await writeTags(root);
    const batches = await take(labels, 6);
    for (const b of batches) {
      assertEquals(b.batchSize, 4);
      assertEquals(Array.from(b.pixelLabelled!), [1, 1, 0, 0]);
      for (let i = 2; i < 4; i++) {
        // An image-level image: every pixel ignored, its tags as the multi-hot row.
        assert(b.labels.subarray(i * 256, (i + 1) * 256).every((v) => v === 255), "all ignore");
        const tags = TAGS[`${b.ids[i]}.png`];
        assertEquals(
          Array.from(b.imageLabels!.subarray(i * K, (i + 1) * K)),
          [0, 1, 2, 3].map((c) => tags.includes(c) ? 1 : 0),
        );
      }
      for (let i = 0; i < 2; i++) {
        // A pixel-labelled image: the hidden class 3 has no pixels but stays an image-level label.
        assert(!b.labels.subarray(i * 256, (i + 1) * 256).includes(3), "class 3 hidden");
      }
    }
    assert(batches.some((b) => b.imageLabels![3] === 1 || b.imageLabels![K + 3] === 1), "class 3 tagged");
    // 5 tag photos in parts of 2: an epoch is 2 batches and visits 4 distinct photos.
    const firstEpoch = batches.slice(0, 2).flatMap((b) => b.ids.slice(2));
    assertEquals(new Set(firstEpoch).size, 4);
    // Deterministic: the same seed gives the same batches.
    (await take(labels, 6)).forEach((b, i) => same(b, batches[i]));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

Deno.test("mixed loader: a resume at any batch boundary gives the batches of a run that never stopped", async () => {
  const root = await tempDir("kappa-mixed-");
  try {
    const labels = await writeTags(root);
    // 6 samples in parts of 2 (3 batches an epoch) against 5 photos in parts of 2 (2 batches an epoch).
    const n = 7;
    const straight = await take(labels, n);
    for (let s = 1; s < n; s++) {
      const resumed = await take(labels, n - s, straight[s].position);
      resumed.forEach((b, i) => same(b, straight[s + i]));
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

const mixedExperiment = (labels: string): Experiment =>
  experiment({
    name: "tiny-larvseg-mixed",
    model: m.larvSegmenter({
      classes: K,
      backbone: m.vit({ dim: 16, depth: 1, heads: 2, patchSize: 8 }),
      attentiveClassifier: m.attentiveClassifier({ slots: 2, pixels: 2, labelsPerImage: 3 }),
    }),
    data: { dataset, train: pipeline, test: testPipeline(), imageLevel: imageLevelData({ labels }) },
    train: trainConfig({
      steps: 6,
      batchSize: 4,
      optimizer: adamWSpec({ lr: 3e-3 }),
      logEvery: 1,
      checkpointEvery: 3,
    }),
    eval: evalConfig({ examples: 0 }),
  });

Deno.test("mixed loader: spec rules name data.imageLevel's fields", async () => {
  const e = mixedExperiment("x.json");
  const { imageLevelLoss: _a, attentiveClassifier: _b, ...plain } = e.model as m.Segmenter;
  const { imageLabels: _c, ...noImageLabels } = dataset;
  const paths = async (x: unknown) =>
    (await Effect.runPromise(Effect.flip(decodeExperiment(x, "bad.ts")))).violations.map((v) => v.path);
  // A model with neither LarvSeg's losses nor a ξ has nothing that learns from image-level images.
  const noLoss = await paths({
    ...e,
    model: plain,
    data: { ...e.data, imageLevel: { labels: "x", ratio: 0.1 } },
  });
  for (const p of ["data.imageLevel.ratio", "data.imageLevel"]) {
    assert(noLoss.includes(p), `${p} in ${noLoss}`);
  }
  // LarvSeg's losses read the pixel-labelled images' image-level labels too.
  const noTags = await paths({ ...e, data: { ...e.data, dataset: noImageLabels } });
  assertEquals(noTags, ["data.dataset.imageLabels"]);
  // Several sources: each needs an image of the batch, and the pixel-labelled images at least one.
  const many = await paths({
    ...e,
    data: { ...e.data, imageLevel: [{ labels: "a", ratio: 0.5 }, { labels: "b", ratio: 0.1 }] },
  });
  assertEquals(many, ["data.imageLevel[1].ratio"]);
  const full = await paths({
    ...e,
    data: { ...e.data, imageLevel: [{ labels: "a", ratio: 0.5 }, { labels: "b", ratio: 0.5 }] },
  });
  assertEquals(full, ["data.imageLevel"]);
});

Deno.test("LarvSeg train with an image-level source: stop at 3, resume to 6 = never stopping, bitwise", async () => {
  const root = await tempDir("kappa-mixed-");
  try {
    const e = mixedExperiment(await writeTags(root));
    const quiet = { workers: 0, print: () => {}, skipFinalEval: true };
    const straight = join(root, "straight"), resumed = join(root, "resumed");
    assert(Exit.isSuccess(await Effect.runPromiseExit(train(e, { ...quiet, out: straight }))));
    const stopped = await Effect.runPromiseExit(train(e, { ...quiet, out: resumed, stopAfter: 3 }));
    assert(Exit.isFailure(stopped));
    assert(Exit.isSuccess(await Effect.runPromiseExit(train(e, { ...quiet, out: resumed, resume: true }))));
    const last = async (dir: string) => {
      const files = (await readdir(join(dir, "checkpoints"))).filter((f) => f.startsWith("step-")).sort();
      return (await Effect.runPromise(loadCheckpoint(join(dir, "checkpoints", files.at(-1)!)))).tensors;
    };
    const [a, b] = [await last(straight), await last(resumed)];
    for (const name of Object.keys(a)) {
      const [x, y] = [a[name].data as Float32Array, b[name].data as Float32Array];
      assert(x.length === y.length && x.every((v, i) => Object.is(v, y[i])), `${name} differs`);
    }
    const lines = (await Deno.readTextFile(join(straight, "metrics.jsonl"))).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert(lines.every((l) => l.terms.imageLevel > 0), "every batch has image-level pairs");
    assertEquals(
      await Deno.readTextFile(join(resumed, "metrics.jsonl")).then((t) =>
        t.replace(/"imagesPerSecond":[^,]*,"elapsedSeconds":[^}]*/g, "")
      ),
      await Deno.readTextFile(join(straight, "metrics.jsonl")).then((t) =>
        t.replace(/"imagesPerSecond":[^,]*,"elapsedSeconds":[^}]*/g, "")
      ),
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

Deno.test("deno task data: an experiment's image-level source is reported (images, labels per image, per class)", async () => {
  const root = await tempDir("kappa-mixed-");
  try {
    const labels = await writeTags(root);
    const source = await Effect.runPromise(readImageLevelLabels(labels, K));
    const text = formatImageLevel(source, proceduralNames(K), 0.5);
    const lines = text.split("\n");
    assertEquals(
      lines[0],
      `image-level source ${labels}: 5 images, 1.80 labels per image, 4/4 classes tagged; 50.00 % of each training batch`,
    );
    // Tags per class: 0 in p0, p3; 1 in p0, p2; 2 in p1, p3; 3 in p2, p3, p4.
    assertEquals(lines.slice(2).map((l) => Number(l.trim().split(/\s+/).at(-1))), [2, 2, 2, 3]);
    // The command reads it from an experiment file (and fails on its bad tags like on bad files).
    const file = join(root, "e.json");
    await Deno.writeTextFile(file, JSON.stringify(mixedExperiment(labels)));
    const reports = await Effect.runPromise(dataCommand({ target: file, split: "train" }));
    assertEquals(reports.length, 1);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

Deno.test({
  name: "mixed loader: image-level samples made in a Worker equal those made on the main thread",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const root = await tempDir("kappa-mixed-");
    try {
      const labels = await writeTags(root);
      const inWorkers = await Effect.runPromise(
        Stream.runCollect(
          mixedTrainLoader(dataset, pipeline, imageLevelData({ labels }), {
            batchSize: 4,
            seed: 7,
            workers: 1,
            prefetch: 0,
          }).pipe(Stream.take(3)),
        ),
      ).then((c) => Array.from(c) as Batch[]);
      (await take(labels, 3)).forEach((b, i) => same(b, inWorkers[i]));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },
});
