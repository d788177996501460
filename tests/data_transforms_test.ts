import { Effect } from "effect";
import { assertClose, assertEquals, assertThrowsMessage } from "./assert.ts";
import { check as assert, gradient } from "./data_fixtures.ts";
import { random } from "../core/random.ts";
import { chooseCrop, classShare, cropArray, flipHorizontal, randomBox } from "../data/crop.ts";
import { normalizeRgb, padLabels } from "../data/normalize.ts";
import { applyDistortion, drawDistortion } from "../data/photometric.ts";
import { sampleRandom, testSample, trainSample } from "../data/pipeline.ts";
import { rescaleSize, resizeCropRgb, resizeLabels, resizeRgb } from "../data/resize.ts";
import { slideWindows } from "../data/slide.ts";
import { folder, testPipeline, trainPipeline } from "../dsl/dataset.ts";
import type { LabelMapping } from "../data/labels.ts";

const run = <A>(effect: Effect.Effect<A>) => Effect.runPromise(effect);

Deno.test("rescaleSize: mmcv keep-ratio rescale (long edge <= max, short edge <= min, +0.5 rounding)", () => {
  // CamVid 480x360 at scale (2048, 512): factor min(2048/480, 512/360) = 1.4222 -> 683x512.
  assertEquals(rescaleSize(360, 480, [2048, 512]), [512, 683]);
  assertEquals(rescaleSize(360, 480, [512, 2048]), [512, 683], "scale order does not matter");
  // COCO 640x480 at (1024, 256): factor min(1.6, 0.5333) -> 341x256.
  assertEquals(rescaleSize(480, 640, [1024, 256]), [256, 341]);
  assertEquals(rescaleSize(100, 100, [50, 50]), [50, 50]);
});

Deno.test("resizeLabels: nearest neighbour, centre-aligned, never invents a label", () => {
  const up = resizeLabels(Int32Array.from([1, 2, 3, 4, 5, 6]), 2, 3, 4, 6);
  assertEquals(Array.from(up), [
    ...[1, 1, 2, 2, 3, 3],
    ...[1, 1, 2, 2, 3, 3],
    ...[4, 4, 5, 5, 6, 6],
    ...[4, 4, 5, 5, 6, 6],
  ]);
  const down = resizeLabels(Int32Array.from({ length: 16 }, (_, i) => i), 4, 4, 2, 2);
  assertEquals(Array.from(down), [5, 7, 13, 15]);
  const big = resizeLabels(Int32Array.from([21840, 65535]), 1, 2, 3, 5);
  assertEquals(new Set(big), new Set([21840, 65535]));
});

Deno.test("resizeRgb: bilinear keeps flat colours and ramps monotone; resize+crop equals crop of resize", async () => {
  const flat = new Uint8Array(4 * 4 * 3).fill(0).map((_, i) => [10, 20, 30][i % 3]);
  const out = await run(resizeRgb(flat, 4, 4, 5, 7));
  assertEquals(out.length, 5 * 7 * 3);
  assertEquals(Array.from(out), Array.from({ length: 35 }, () => [10, 20, 30]).flat());
  const ramp = gradient(8, 6);
  const big = await run(resizeRgb(ramp, 6, 8, 12, 16));
  for (let x = 1; x < 16; x++) assert(big[x * 3] >= big[(x - 1) * 3], "red ramps left to right");
  const box = { y0: 3, x0: 5, y1: 9, x1: 14 };
  const cropped = await run(resizeCropRgb(ramp, 6, 8, 12, 16, box));
  assertEquals(Array.from(cropped), Array.from(cropArray(big, 16, 3, box)));
});

Deno.test("crop: random boxes fit, class shares count labeled pixels only", () => {
  const rng = random(1, 2);
  for (let i = 0; i < 50; i++) {
    const b = randomBox(rng, 10, 7, [4, 5]);
    assert(
      b.y0 >= 0 && b.y1 === b.y0 + 4 && b.y1 <= 10 && b.x0 >= 0 && b.x1 === b.x0 + 5 && b.x1 <= 7,
      JSON.stringify(b),
    );
  }
  assertEquals(
    randomBox(rng, 3, 2, [4, 5]),
    { y0: 0, x0: 0, y1: 3, x1: 2 },
    "a crop larger than the image is the image",
  );
  const share = classShare(Int32Array.from([0, 0, 1, 255]), 2, { y0: 0, x0: 0, y1: 2, x1: 2 }, 3);
  assertEquals([share.classes, share.maxShare], [2, 2 / 3]);
});

Deno.test("chooseCrop: with catMaxRatio, a kept crop has >1 class and no class >= the ratio", () => {
  // 8x8: column 0 is class 1, the rest class 0 — most 4x4 crops are a single class.
  const labels = Int32Array.from({ length: 64 }, (_, i) => (i % 8 === 0 ? 1 : 0));
  let accepted = 0;
  for (let seed = 0; seed < 20; seed++) {
    const box = chooseCrop(random(seed), labels, 8, 8, [4, 4], 0.8, 2);
    const { classes, maxShare } = classShare(labels, 8, box, 2);
    if (classes > 1 && maxShare < 0.8) accepted++;
    const plain = chooseCrop(random(seed), labels, 8, 8, [4, 4], 1, 2);
    assertEquals(plain, randomBox(random(seed), 8, 8, [4, 4]), "catMaxRatio 1 draws once");
  }
  // Only crops touching column 0 qualify (x0 = 0: 1 of 5 offsets); 11 draws find one ~91% of the time.
  assert(accepted >= 15, `accepted ${accepted}/20`);
});

Deno.test("cropArray and flipHorizontal move whole pixels", () => {
  const rgb = Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => i);
  assertEquals(Array.from(cropArray(rgb, 3, 3, { y0: 1, x0: 1, y1: 2, x1: 3 })), [12, 13, 14, 15, 16, 17]);
  assertEquals(Array.from(flipHorizontal(rgb.slice(), 2, 3, 3)), [
    6,
    7,
    8,
    3,
    4,
    5,
    0,
    1,
    2,
    15,
    16,
    17,
    12,
    13,
    14,
    9,
    10,
    11,
  ]);
  assertEquals(Array.from(flipHorizontal(Int32Array.from([1, 2, 3, 4]), 1, 4, 1)), [4, 3, 2, 1]);
});

Deno.test("photometric: mmsegmentation's convert (clip then truncate) and HSV saturation/hue", () => {
  const none = { brightness: null, contrastFirst: true, contrast: null, saturation: null, hue: null };
  assertEquals(Array.from(applyDistortion(Uint8Array.from([250, 5, 100]), { ...none, brightness: 10 })), [
    255,
    15,
    110,
  ]);
  assertEquals(Array.from(applyDistortion(Uint8Array.from([250, 5, 100]), { ...none, brightness: -10.7 })), [
    239,
    0,
    89,
  ]);
  assertEquals(Array.from(applyDistortion(Uint8Array.from([100, 200, 3]), { ...none, contrast: 1.5 })), [
    150,
    255,
    4,
  ]);
  // Brightness then contrast, or contrast last: (100 + 10) * 2 = 220 vs 100 * 2 + 10 -> only the order given.
  assertEquals(applyDistortion(Uint8Array.from([100]), { ...none, brightness: 10, contrast: 2 })[0], 220);
  // Hue +30 OpenCV units = +60°: red -> yellow; saturation 0.5 on red: S 255 -> 127.
  assertEquals(Array.from(applyDistortion(Uint8Array.from([255, 0, 0]), { ...none, hue: 30 })), [
    255,
    255,
    0,
  ]);
  assertEquals(Array.from(applyDistortion(Uint8Array.from([255, 0, 0]), { ...none, saturation: 0.5 })), [
    255,
    128,
    128,
  ]);
  const pixels = Uint8Array.from([200, 100, 50, 0, 0, 0, 17, 240, 99, 128, 128, 128]);
  assertClose(applyDistortion(pixels.slice(), { ...none, saturation: 1, hue: 0 }), pixels, {
    atol: 1,
    rtol: 0,
  });
  const d = drawDistortion(random(9, 9));
  assertEquals(d, drawDistortion(random(9, 9)), "draws are a function of the generator");
  if (d.hue !== null) assert(d.hue >= -18 && d.hue < 18, "hue in [-18, 18)");
});

Deno.test("normalizeRgb and padLabels: (x - mean) / std in CHW, padding bottom/right", () => {
  const out = normalizeRgb(
    Uint8Array.from([124, 116, 104]),
    1,
    1,
    [123.675, 116.28, 103.53],
    [58.395, 57.12, 57.375],
    2,
    2,
    0,
  );
  assertClose(out, [
    ...[(124 - 123.675) / 58.395, 0, 0, 0],
    ...[(116 - 116.28) / 57.12, 0, 0, 0],
    ...[(104 - 103.53) / 57.375, 0, 0, 0],
  ]);
  const two = normalizeRgb(Uint8Array.from([1, 2, 3, 4, 5, 6]), 1, 2, [0, 0, 0], [1, 2, 3]);
  assertClose(two, [1, 4, 1, 2.5, 1, 2]);
  assertEquals(Array.from(padLabels(Int32Array.from([1, 2]), 1, 2, 2, 3, 255)), [1, 2, 255, 255, 255, 255]);
});

Deno.test("slideWindows: mmsegmentation's grid, last window shifted back to the border", () => {
  const w = slideWindows(512, 1024, [512, 512], [341, 341]);
  assertEquals(w.map((x) => [x.y0, x.x0, x.y1, x.x1]), [[0, 0, 512, 512], [0, 341, 512, 853], [
    0,
    512,
    512,
    1024,
  ]]);
  assertEquals(slideWindows(100, 80, [512, 512], [341, 341]), [{ y0: 0, x0: 0, y1: 100, x1: 80 }]);
  assertEquals(slideWindows(700, 512, [512, 512], [256, 256]).length, 2);
  assertThrowsMessage(() => slideWindows(10, 10, [0, 5], [1, 1]), "must be positive");
});

/** A 3-class dataset description for the pipelines (no files needed). */
const tiny = (hidden = [0, 0, 0], imageLabels?: "image" | "crop") => ({
  classes: { names: ["a", "b", "c"], colors: [], ignoreIndex: 255 },
  mapping: { hidden: Uint8Array.from(hidden) } as unknown as LabelMapping,
  spec: folder({ root: "r", classes: "c.json", ...(imageLabels ? { imageLabels } : {}) }),
});

Deno.test("trainSample: flip + normalize + pad, exactly, with no resize and no photometric", async () => {
  const raw = {
    id: "x",
    width: 2,
    height: 2,
    image: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
    labels: Int32Array.from([0, 1, 2, 255]),
  };
  const pipeline = trainPipeline({
    scale: [2, 2],
    ratioRange: [1, 1],
    cropSize: [3, 2],
    catMaxRatio: 1,
    flipProb: 1,
    photometric: false,
    mean: [0, 0, 0],
    std: [1, 1, 1],
    padValue: -1,
  });
  const s = await run(trainSample(tiny([0, 1, 0], "image"), pipeline, raw, random(1)));
  assertEquals([s.height, s.width], [3, 2]);
  // Flipped rows: [4 5 6 | 1 2 3], [10 11 12 | 7 8 9]; third row is padding.
  assertEquals(Array.from(s.image), [4, 1, 10, 7, -1, -1, 5, 2, 11, 8, -1, -1, 6, 3, 12, 9, -1, -1]);
  // Labels flipped [1 0 / 255 2], class 1 hidden, padding is ignore; image labels keep class 1.
  assertEquals(Array.from(s.labels), [255, 0, 255, 2, 255, 255]);
  assertEquals(Array.from(s.imageLabels!), [1, 1, 1]);
  assertEquals(Array.from(raw.labels), [0, 1, 2, 255], "the decoded sample is not modified");
});

Deno.test("trainSample: same generator address -> same bytes; different index -> different crop", async () => {
  const raw = {
    id: "x",
    width: 48,
    height: 32,
    image: gradient(48, 32),
    labels: new Int32Array(48 * 32).map((_, i) => i % 3),
  };
  const pipeline = trainPipeline({ scale: [64, 32], cropSize: [16, 16] });
  const a = await run(trainSample(tiny(), pipeline, raw, sampleRandom(5, 2, 7)));
  const b = await run(trainSample(tiny(), pipeline, raw, sampleRandom(5, 2, 7)));
  const c = await run(trainSample(tiny(), pipeline, raw, sampleRandom(5, 2, 8)));
  assertEquals(a.image, b.image);
  assertEquals(a.labels, b.labels);
  assert(a.image.some((v, i) => v !== c.image[i]), "another index augments differently");
  assertEquals([a.image.length, a.labels.length], [3 * 16 * 16, 16 * 16]);
});

Deno.test("testSample: keep-ratio resize of image and labels, original labels kept for evaluation", async () => {
  const raw = {
    id: "t",
    width: 8,
    height: 4,
    image: gradient(8, 4),
    labels: Int32Array.from({ length: 32 }, (_, i) => i % 8 < 4 ? 0 : 1),
  };
  const same = await run(testSample(tiny(), testPipeline(), raw));
  assertEquals([same.height, same.width, same.original.height], [4, 8, 4]);
  assertEquals(same.labels, raw.labels);
  const half = await run(testSample(tiny(), testPipeline({ resize: [4, 2] }), raw));
  assertEquals([half.height, half.width], [2, 4]);
  assertEquals(Array.from(half.labels), [0, 0, 1, 1, 0, 0, 1, 1]);
  assertEquals(half.original.labels, raw.labels);
  assertEquals(half.image.length, 3 * 2 * 4);
});
