/**
 * Image-level sources (issue 24 item 3): label semantics in ξ's multi-label losses, the multi-source mixed
 * loader (composition per batch, known-label rows, exact resume), recall@κ, the clothing/ source's decode,
 * and ξ learning from a complete and a partial source in a short training run.
 */
import { Effect, Exit, Stream } from "effect";
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { encodePng, gradient, put, tempDir } from "./data_fixtures.ts";
import { runGraph } from "./graph_runner.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { value } from "../ir/value.ts";
import { asymmetricLoss, binaryCrossEntropy } from "../layers/losses.ts";
import {
  type ImageLevelData,
  imageLevelData,
  imageLevelShares,
  procedural,
  testPipeline,
  trainPipeline,
} from "../dsl/dataset.ts";
import { decodeExperiment, experiment, imageLabelInputs } from "../dsl/experiment.ts";
import * as m from "../dsl/model.ts";
import { adamWSpec, evalConfig, trainConfig } from "../dsl/training.ts";
import { mixedTrainLoader } from "../data/mixed_loader.ts";
import { readImageLevelLabels } from "../data/image_level.ts";
import { type BadFiles, problemLine } from "../data/errors.ts";
import type { Batch } from "../data/batch.ts";
import { imageRecallAtK, multilabelAccumulator } from "../eval/multilabel_ap.ts";
import { imageLabelFeeds } from "../kinds/semantic.ts";
import { IMAGE_LABELS_KNOWN, trainingGraph } from "../interpret/segmenter.ts";
import { optimizerConfig } from "../interpret/optimizer.ts";
import { trainShapes } from "../interpret/shapes.ts";
import { train } from "../train/train.ts";

const close = (a: number, b: number, tol = 1e-5) => assert(Math.abs(a - b) <= tol, `${a} vs ${b}`);

Deno.test("label semantics: a partial image contributes no negative-class term; a complete one does", async () => {
  // Two images, three classes, class 0 listed in both. Image 0 is complete (classes 1 and 2 are
  // negatives); image 1 is partial (only class 0 known: classes 1 and 2 unknown).
  const g = new Graph("semantics");
  const x = o.input(g, "x", [2, 3]), y = o.input(g, "y", [2, 3]), known = o.input(g, "known", [2, 3]);
  g.output("bce", binaryCrossEntropy(x, y, known));
  g.output("bceAll", binaryCrossEntropy(x, y));
  g.output("asl", asymmetricLoss(x, y, {}, known));
  g.output("aslAll", asymmetricLoss(x, y));
  const f = (logits: number[], mask: number[]) => ({
    x: value("float32", Float32Array.from(logits), [2, 3]),
    y: value("float32", Float32Array.of(1, 0, 0, 1, 0, 0), [2, 3]),
    known: value("float32", Float32Array.from(mask), [2, 3]),
  });
  const logits = [1, -1, 0.5, 2, 0.3, -0.7];
  const out = await runGraph(g, f(logits, [1, 1, 1, 1, 0, 0]));
  // By hand, softplus(t) = log(1 + e^t), divided by b·K = 6:
  // BCE: softplus(−1) + softplus(−1) + softplus(0.5) [image 0: the positive and both negatives]
  //      + softplus(−2) [image 1: its positive only] = 1.727528 → 0.287921.
  close(out.bce[0], 0.287921);
  // Read as complete, image 1 adds softplus(0.3) + softplus(−0.7) = 1.257534: 0.497512.
  close(out.bceAll[0], 0.497512);
  // ASL (γ₋ = 2, clip 0.05), terms −log p (positives) and −log q·(1 − q)² (negatives), q = min(1 − p + 0.05, 1):
  // image 0: 0.313262 + 0.011845 + 0.278457, image 1: 0.126928 → 0.121749; complete: + 0.204428 + 0.026289.
  close(out.asl[0], 0.121749);
  close(out.aslAll[0], 0.160202);
  // The unknown classes' logits do not move the partial image's loss at all.
  const moved = await runGraph(g, f([1, -1, 0.5, 2, 9, -9], [1, 1, 1, 1, 0, 0]));
  assertEquals([moved.bce[0], moved.asl[0]], [out.bce[0], out.asl[0]]);
  // An all-ones mask is the unmasked loss (the divisor stays b·K).
  const ones = await runGraph(g, f(logits, [1, 1, 1, 1, 1, 1]));
  close(ones.bce[0], out.bceAll[0], 1e-7);
  close(ones.asl[0], out.aslAll[0], 1e-7);
});

const K = 4;
const dataset = procedural({ numClasses: K, height: 16, width: 16, count: 6, seed: 2, imageLabels: "image" });
const pipeline = trainPipeline({ scale: [16, 16], ratioRange: [0.8, 1.2], cropSize: [16, 16] });
/** Source A: multi-label tags, complete. Source B: one label per photo, partial (clothing/'s form). */
const TAGS: Record<string, number[]> = {
  "a0.png": [0, 1],
  "a1.png": [2],
  "a2.png": [1, 3],
  "a3.png": [0, 2, 3],
};
const SINGLE: Record<string, number[]> = { "b0.png": [1], "b1.png": [3], "b2.png": [2] };

const writeSource = async (root: string, labels: Record<string, number[]>, seed: number) => {
  for (const name of Object.keys(labels)) {
    await put(join(root, "images", name), encodePng(20, 20, "rgb8", gradient(20, 20, seed++)));
  }
  return await put(join(root, "labels.json"), JSON.stringify({ images: "images", labels }));
};

const sourcesIn = async (root: string): Promise<readonly ImageLevelData[]> => [
  imageLevelData({ labels: await writeSource(join(root, "a"), TAGS, 10), ratio: 0.25 }),
  imageLevelData({
    labels: await writeSource(join(root, "b"), SINGLE, 20),
    ratio: 0.25,
    semantics: "partial",
  }),
];

const take = (sources: readonly ImageLevelData[], n: number, start?: { epoch: number; index: number }) =>
  Effect.runPromise(
    Stream.runCollect(
      mixedTrainLoader(dataset, pipeline, sources, {
        batchSize: 4,
        seed: 7,
        workers: 0,
        prefetch: 0,
        ...(start ? { start } : {}),
      }).pipe(Stream.take(n)),
    ),
  ).then((c) => Array.from(c) as Batch[]);

const row = (a: Uint8Array, i: number) => Array.from(a.subarray(i * K, (i + 1) * K));
const hot = (cs: number[]) => [0, 1, 2, 3].map((c) => (cs.includes(c) ? 1 : 0));

Deno.test("mixed loader, two sources: 2 pixel-labelled + 1 complete + 1 partial image per batch, known-label rows", async () => {
  const root = await tempDir("kappa-sources-");
  try {
    const sources = await sourcesIn(root);
    assertEquals(imageLevelShares(4, sources), { perSource: [1, 1], pixel: 2 });
    const batches = await take(sources, 7);
    for (const b of batches) {
      assertEquals(Array.from(b.pixelLabelled!), [1, 1, 0, 0]);
      // Pixel-labelled images: every class known.
      for (const i of [0, 1]) assertEquals(row(b.imageLabelsKnown!, i), [1, 1, 1, 1]);
      // Place 2: a photo of the complete source; every class known, its tags positive.
      assert(`${b.ids[2]}.png` in TAGS, b.ids[2]);
      assertEquals(row(b.imageLabels!, 2), hot(TAGS[`${b.ids[2]}.png`]));
      assertEquals(row(b.imageLabelsKnown!, 2), [1, 1, 1, 1]);
      // Place 3: a photo of the partial source; only its one listed class known.
      assert(`${b.ids[3]}.png` in SINGLE, b.ids[3]);
      assertEquals(row(b.imageLabels!, 3), hot(SINGLE[`${b.ids[3]}.png`]));
      assertEquals(row(b.imageLabelsKnown!, 3), hot(SINGLE[`${b.ids[3]}.png`]));
      for (const i of [2, 3]) assert(b.labels.subarray(i * 256, (i + 1) * 256).every((v) => v === 255));
    }
    // Each source walks its own epochs: 4 tag photos (4 batches an epoch), 3 single-label photos (3).
    assertEquals(new Set(batches.slice(0, 4).map((b) => b.ids[2])).size, 4);
    assertEquals(new Set(batches.slice(0, 3).map((b) => b.ids[3])).size, 3);
    // A resume at any batch boundary gives the batches of a run that never stopped.
    for (let s = 1; s < batches.length; s++) {
      const resumed = await take(sources, batches.length - s, batches[s].position);
      resumed.forEach((b, i) => {
        const want = batches[s + i];
        assertEquals([b.ids, b.position], [want.ids, want.position]);
        assertEquals(Array.from(b.imageLabelsKnown!), Array.from(want.imageLabelsKnown!));
        assert(b.images.every((v, j) => Object.is(v, want.images[j])), `batch ${s + i}: images differ`);
      });
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

Deno.test("mixed loader: pixel-labelled images without image-level labels get an empty row (ξ reads their masks)", async () => {
  const root = await tempDir("kappa-sources-");
  try {
    const { imageLabels: _, ...plain } = dataset;
    const [b] = await Effect.runPromise(
      Stream.runCollect(
        mixedTrainLoader(plain, pipeline, await sourcesIn(root), {
          batchSize: 4,
          seed: 1,
          workers: 0,
          prefetch: 0,
        }).pipe(Stream.take(1)),
      ),
    );
    assertEquals([row(b.imageLabels!, 0), row(b.imageLabels!, 1)], [[0, 0, 0, 0], [0, 0, 0, 0]]);
    assertEquals(row(b.imageLabels!, 2), hot(TAGS[`${b.ids[2]}.png`]));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

Deno.test("recall@κ: the share of an image's ground-truth classes among its top κ, averaged over images", () => {
  // Image 1: scores 0.9 / 0.1 / 0.5 / 0.5, ground truth {0, 3}; top-2 = {0, 2} (the tie at 0.5 goes to
  // the lower id, as ONNX TopK): 1 of 2 → 0.5. Image 2: ground truth {1}, top-2 = {1, 3} → 1.
  // Image 3 has no ground-truth class: skipped, not counted as 0.
  close(imageRecallAtK([0.9, 0.1, 0.5, 0.5], [1, 0, 0, 1], 2), 0.5, 0);
  close(imageRecallAtK([0.2, 0.8, 0.1, 0.7], [0, 1, 0, 0], 2), 1, 0);
  assert(Number.isNaN(imageRecallAtK([0.2, 0.8, 0.1, 0.7], [0, 0, 0, 0], 2)));
  const acc = multilabelAccumulator({ numClasses: 4 });
  acc.add([0.9, 0.1, 0.5, 0.5], [1, 0, 0, 1]);
  acc.add([0.2, 0.8, 0.1, 0.7], [0, 1, 0, 0]);
  acc.add([0.2, 0.8, 0.1, 0.7], [0, 0, 0, 0]);
  close(acc.recallAt(2), 75, 1e-12); // (0.5 + 1) / 2 × 100
  close(acc.recallAt(4), 100, 1e-12); // κ = K keeps every class
  close(acc.recallAt(1), 75, 1e-12); // top-1: image 1 keeps class 0 (1 of 2), image 2 class 1 (1 of 1)
});

Deno.test("clothing/ decodes as 1,870 single-label photos of 13 ccp classes; bad entries are one line each naming labels.json", async () => {
  const file = "../shared/data/clothing/labels.json";
  const source = await Effect.runPromise(readImageLevelLabels(file, 59));
  assertEquals(source.samples.length, 1870);
  assert(source.samples.every((s) => s.classes.length === 1), "one label per photo");
  const classes = [...new Set(source.samples.map((s) => s.classes[0]))].sort((a, b) => a - b);
  assertEquals(classes, [4, 5, 6, 14, 20, 22, 31, 38, 39, 40, 42, 51, 54]);
  // A copy with three bad entries beside a good one.
  const root = await tempDir("kappa-clothing-");
  try {
    const good = source.samples[0];
    const images = join(root, "images");
    await put(join(images, "ok.jpg"), readFileSync(good.image));
    const bad = await put(
      join(root, "labels.json"),
      JSON.stringify({
        images: "images",
        labels: { "ok.jpg": good.classes, "far.jpg": [59], "gone.jpg": [51], "../up.jpg": [4] },
      }),
    );
    const err = await Effect.runPromise(Effect.flip(readImageLevelLabels(bad, 59)));
    assertEquals(err._tag, "BadFiles");
    const lines = (err as BadFiles).problems.map(problemLine);
    assertEquals(lines, [
      `${bad}: "../up.jpg": leaves the image folder ${images} (entries name files inside it)`,
      `${bad}: "far.jpg": class id 59 is not in the 59-class vocabulary (0..58)`,
      `${bad}: "far.jpg": image missing (${join(images, "far.jpg")})`,
      `${bad}: "gone.jpg": image missing (${join(images, "gone.jpg")})`,
    ]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

Deno.test("ξ learns from a complete and a partial source: the graph takes the known mask, trains, and reports recall@κ", async () => {
  const root = await tempDir("kappa-sources-");
  try {
    const { imageLabels: _, ...plain } = dataset;
    const e = await Effect.runPromise(decodeExperiment(
      experiment({
        name: "tiny-xi-sources",
        model: m.segmenter({
          classes: K,
          backbone: m.vit({ dim: 16, depth: 1, heads: 2, patchSize: 8 }),
          xi: m.gapLinear(),
          psi: null,
          select: m.all(),
          multiLabelLoss: m.asymmetricLoss({ weight: 1 }),
        }),
        data: { dataset: plain, train: pipeline, test: testPipeline(), imageLevel: await sourcesIn(root) },
        train: trainConfig({ steps: 4, batchSize: 4, optimizer: adamWSpec({ lr: 3e-3 }), logEvery: 1 }),
        eval: evalConfig({ examples: 0, recallAt: 2 }),
      }),
      "tiny",
    ));
    assertEquals(imageLabelInputs(e.model as m.Segmenter, e.data), { imageLabels: true, known: true });
    const g = trainingGraph(
      e.model as m.Segmenter,
      trainShapes(e),
      optimizerConfig(e.train),
      undefined,
      "trained",
      {
        imageLabels: true,
        known: true,
      },
    );
    assert(g.lookup(IMAGE_LABELS_KNOWN) !== undefined, "the graph takes imageLabelsKnown");
    // The feed comes from the batch's rows (all ones for a batch without them).
    const feeds = imageLabelFeeds(
      {
        labels: new Int32Array(0),
        batchSize: 2,
        height: 1,
        width: 1,
        ids: ["a", "b"],
        position: { epoch: 0, index: 0 },
        imageLabels: Uint8Array.of(0, 1, 0, 0, 0, 0, 1, 0),
        imageLabelsKnown: Uint8Array.of(1, 1, 1, 1, 0, 0, 1, 0),
      },
      K,
      true,
    );
    assertEquals(Array.from(feeds[IMAGE_LABELS_KNOWN].data as Float32Array), [1, 1, 1, 1, 0, 0, 1, 0]);
    const out = join(root, "run");
    const r = await Effect.runPromiseExit(train(e, { out, workers: 0, print: () => {} }));
    assert(Exit.isSuccess(r), String(r));
    const lines = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert(
      lines.filter((l) => l.kind === "train").every((l) => l.terms.multiLabel > 0),
      "ξ's loss in every step",
    );
    const record = JSON.parse(readFileSync(join(out, "eval-val.json"), "utf8"));
    assertEquals(record.recallAtK.k, 2);
    assert(record.recallAtK.value >= 0 && record.recallAtK.value <= 100, JSON.stringify(record.recallAtK));
    assert(typeof record.mAP === "number" && record.mIoU === null, JSON.stringify(record));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
