import { Effect, Stream } from "effect";
import { assertEquals, assertNotEquals } from "./assert.ts";
import { check as assert } from "./data_fixtures.ts";
import { camvid } from "../dsl/datasets.ts";
import type { Batch } from "../data/batch.ts";
import { testLoader, trainLoader, type TrainLoaderOptions } from "../data/loader.ts";
import { epochOrder } from "../data/order.ts";
import { type DatasetSpec, procedural, testPipeline, trainPipeline } from "../dsl/dataset.ts";

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect);
const failure = <E>(effect: Effect.Effect<unknown, E>): Promise<E> =>
  Effect.runPromise(Effect.flip(effect) as Effect.Effect<E>);

const synthetic: DatasetSpec = procedural({
  numClasses: 5,
  height: 24,
  width: 32,
  count: 10,
  classesPerImage: 3,
  seed: 1,
});
const pipeline = trainPipeline({ scale: [32, 24], cropSize: [16, 16] });
const base: TrainLoaderOptions = { batchSize: 4, seed: 11, workers: 0, concurrency: 3 };

const take = (
  n: number,
  options: Partial<TrainLoaderOptions> = {},
  spec: DatasetSpec = synthetic,
  pipe = pipeline,
) => run(Stream.runCollect(trainLoader(spec, pipe, { ...base, ...options }).pipe(Stream.take(n))));

/** Batches as comparable plain data: position, ids and every byte of images and labels. */
const bytes = (batches: readonly Batch[]) =>
  batches.map((b) => ({
    position: b.position,
    ids: b.ids,
    images: Array.from(new Uint8Array(b.images.buffer, b.images.byteOffset, b.images.byteLength)),
    labels: Array.from(b.labels),
  }));

Deno.test("epochOrder: a seeded permutation per epoch", () => {
  const e0 = Array.from(epochOrder(10, 3, 0));
  assertEquals([...e0].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assertEquals(Array.from(epochOrder(10, 3, 0)), e0);
  assertNotEquals(Array.from(epochOrder(10, 3, 1)), e0);
  assertNotEquals(Array.from(epochOrder(10, 4, 0)), e0);
});

Deno.test("trainLoader: batch layout, positions per epoch, dropLast", async () => {
  const batches = await take(5);
  const b = batches[0];
  assertEquals([b.batchSize, b.height, b.width, b.images.length, b.labels.length], [
    4,
    16,
    16,
    4 * 3 * 16 * 16,
    4 * 16 * 16,
  ]);
  assertEquals(batches.map((x) => [x.position.epoch, x.position.index]), [[0, 0], [0, 4], [1, 0], [1, 4], [
    2,
    0,
  ]]);
  const order = epochOrder(10, 11, 0);
  assertEquals(b.ids, [0, 1, 2, 3].map((i) => `procedural-train-${String(order[i]).padStart(6, "0")}`));
  const all = await take(4, { dropLast: false });
  assertEquals(all.map((x) => [x.position.epoch, x.position.index, x.batchSize]), [[0, 0, 4], [0, 4, 4], [
    0,
    8,
    2,
  ], [1, 0, 4]]);
  assertEquals(new Set(all.slice(0, 3).flatMap((x) => x.ids)).size, 10, "an epoch visits every sample once");
  for (const x of batches) {
    for (const v of x.labels) assert((v >= 0 && v < 5) || v === 255, `label ${v}`);
  }
});

Deno.test("trainLoader: same seed, byte-identical batches; another seed, other batches", async () => {
  const a = bytes(await take(4));
  const b = bytes(await take(4, { concurrency: 1, prefetch: 0 }));
  assertEquals(a, b);
  const c = bytes(await take(4, { seed: 12 }));
  assertNotEquals(a.map((x) => x.images), c.map((x) => x.images));
});

Deno.test("trainLoader: starting at (epoch, index) yields exactly the batches a full run has from there", async () => {
  const full = bytes(await take(7));
  const resumed = bytes(await take(4, { start: { epoch: 1, index: 4 } }));
  assertEquals(resumed, full.slice(3, 7));
});

Deno.test("trainLoader: Workers produce the same bytes as the main thread (real CamVid frames)", async () => {
  const small = trainPipeline({ cropSize: [64, 64], scale: [160, 120] });
  const main = bytes(await take(2, { batchSize: 2, workers: 0 }, camvid, small));
  const workers = bytes(await take(2, { batchSize: 2, workers: 1, concurrency: 4 }, camvid, small));
  assertEquals(workers, main);
  assertEquals(main[0].images.length, 2 * 3 * 64 * 64 * 4);
});

Deno.test("trainLoader: bad options are one-line errors", async () => {
  const cases: [Partial<TrainLoaderOptions>, string][] = [
    [{ start: { epoch: 0, index: 2 } }, "start.index 2 is not a batch start (multiples of 4 below 8)"],
    [{ start: { epoch: 0, index: 8 } }, "start.index 8 is not a batch start (multiples of 4 below 8)"],
    [{ batchSize: 11 }, "batchSize 11 exceeds the 10 samples of procedural/train (dropLast)"],
    [{ batchSize: 0 }, "batchSize must be an integer >= 1, got 0"],
    [{ concurrency: 0 }, "concurrency must be an integer >= 1, got 0"],
    [{ split: "holdout" }, `procedural split "holdout" does not exist (train, val, test)`],
  ];
  for (const [options, message] of cases) {
    const e = await failure(Stream.runCollect(trainLoader(synthetic, pipeline, { ...base, ...options })));
    assertEquals(e.message, message);
  }
});

Deno.test("trainLoader: image-level labels kept for hidden classes whose pixels are ignored", async () => {
  const spec: DatasetSpec = procedural({
    numClasses: 4,
    height: 24,
    width: 32,
    count: 12,
    classesPerImage: 4,
    seed: 2,
    hidden: ["synthetic-00001"],
    imageLabels: "crop",
  });
  const batches = await take(3, {}, spec);
  let hiddenSeen = 0;
  for (const b of batches) {
    assertEquals(b.imageLabels!.length, b.batchSize * 4);
    for (let s = 0; s < b.batchSize; s++) {
      const labels = b.labels.subarray(s * 256, (s + 1) * 256);
      const multiHot = b.imageLabels!.subarray(s * 4, (s + 1) * 4);
      assert(!labels.includes(1), "hidden class pixels are ignore");
      for (const c of [0, 2, 3]) {
        assertEquals(multiHot[c] === 1, labels.includes(c), `class ${c} of ${b.ids[s]}`);
      }
      hiddenSeen += multiHot[1];
    }
  }
  assert(hiddenSeen > 0, "some crops hold the hidden class, and its image-level label says so");
});

Deno.test("testLoader: every image once, in order, batch size 1, with the original label map", async () => {
  const batches = await run(
    Stream.runCollect(
      testLoader(camvid, testPipeline({ resize: [240, 180] }), { workers: 0 }).pipe(Stream.take(3)),
    ),
  );
  assertEquals(batches.map((b) => b.ids[0]), ["0016E5_07959", "0016E5_07961", "0016E5_07963"]);
  assertEquals(batches.map((b) => b.position), [{ epoch: 0, index: 0 }, { epoch: 0, index: 1 }, {
    epoch: 0,
    index: 2,
  }]);
  const b = batches[0];
  assertEquals([b.batchSize, b.height, b.width, b.images.length], [1, 180, 240, 3 * 180 * 240]);
  assertEquals([b.original.height, b.original.width, b.original.labels.length], [360, 480, 360 * 480]);
  const later = await run(Stream.runCollect(testLoader(camvid, testPipeline(), { workers: 0, start: 100 })));
  assertEquals(later.map((x) => [x.ids[0], x.position.index, x.height]), [["0016E5_08159", 100, 360]]);
});
