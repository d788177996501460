import { Effect } from "effect";
import sharp from "sharp";
import { join } from "node:path";
import { assertClose, assertEquals } from "./assert.ts";
import { check as assert, encodeJpeg, encodePng, gradient, put, withTempDir } from "./data_fixtures.ts";
import { camvid, ccp, coco133 } from "../dsl/datasets.ts";
import type { CocoDataset } from "../data/coco.ts";
import { readMask, readRgb, readSegmentIds } from "../data/decode.ts";
import { openDataset } from "../data/open.ts";

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect);
const failure = <E>(effect: Effect.Effect<unknown, E>): Promise<E> =>
  Effect.runPromise(Effect.flip(effect) as Effect.Effect<E>);
const distinct = (values: ArrayLike<number>) => [...new Set(Array.from(values))].sort((a, b) => a - b);

Deno.test("camvid and coco133 list the right splits: 367/101/233 and 100/100 images, 11 and 133 classes", async () => {
  for (const [split, n] of [["train", 367], ["val", 101], ["test", 233]] as const) {
    const d = await run(openDataset(camvid, split));
    assertEquals([d.samples.length, d.imageCount, d.problems.length], [n, n, 0], `camvid/${split}`);
    assertEquals(d.classes.names.length, 11);
    assertEquals(d.classes.ignoreIndex, 11);
  }
  for (const split of ["train2017", "val2017"]) {
    const d = await run(openDataset(coco133, split));
    assertEquals([d.samples.length, d.problems.length], [100, 0], `coco133/${split}`);
    assertEquals(d.classes.names.length, 133);
    assertEquals(d.classes.isThing!.filter(Boolean).length, 80, "80 things + 53 stuff");
    assertEquals(d.classes.ignoreIndex, 255);
  }
  const e = await failure(openDataset(camvid, "training"));
  assertEquals(e.message, `split "training" does not exist (splits found: test, train, val)`);
});

Deno.test("ccp lists 804/200 images over 59 classes (ignore 255); image-level/ is not a split", async () => {
  for (const [split, n] of [["train", 804], ["val", 200]] as const) {
    const d = await run(openDataset(ccp, split));
    assertEquals([d.samples.length, d.imageCount, d.problems.length], [n, n, 0], `ccp/${split}`);
    assertEquals([d.classes.names.length, d.classes.names[0], d.classes.ignoreIndex], [
      59,
      "background",
      255,
    ]);
  }
  const e = await failure(openDataset(ccp, "image-level"));
  assertEquals(e.message, `split "image-level" does not exist (splits found: train, val)`);
});

Deno.test("camvid: a frame decodes to 480x360 RGB with its mask's values as training ids (11 = void)", async () => {
  const d = await run(openDataset(camvid, "train"));
  const sample = d.samples.find((s) => s.id === "0001TP_006690")!;
  const x = await run(d.read(sample));
  assertEquals([x.width, x.height, x.image.length, x.labels.length], [480, 360, 480 * 360 * 3, 480 * 360]);
  const raw = await sharp(sample.mask).extractChannel(0).raw().toBuffer();
  assertEquals(Array.from(x.labels), Array.from(raw), "identity mapping: camvid values are its training ids");
  assertEquals(distinct(x.labels), [0, 1, 2, 3, 4, 5, 6, 8, 9, 11]);
});

Deno.test("coco133: semantic category ids map to list positions; 0 (unlabeled) becomes ignore", async () => {
  const d = await run(openDataset(coco133, "train2017"));
  const x = await run(d.read(d.samples.find((s) => s.id === "000000000009")!));
  // Raw ids 0, 51 bowl, 55 orange, 56 broccoli, 189 table-merged, 196 food-other-merged.
  assertEquals(distinct(x.labels), [45, 49, 50, 121, 128, 255]);
  assertEquals([45, 49, 50, 121, 128].map((k) => d.classes.names[k]), [
    "bowl",
    "orange",
    "broccoli",
    "table-merged",
    "food-other-merged",
  ]);
  assertEquals([d.classes.isThing![45], d.classes.isThing![121]], [true, false]);
  // 307,200 pixels minus the 289,945 covered by segments are unlabeled.
  assertEquals(x.labels.filter((v) => v === 255).length, 640 * 480 - 289945);
});

Deno.test("coco133: panoptic segments of an image, checked against the PNG", async () => {
  const d = (await run(openDataset(coco133, "train2017"))) as CocoDataset;
  const p = await run(d.readPanoptic(d.samples.find((s) => s.id === "000000000009")!));
  assertEquals([p.width, p.height, p.segments.length], [640, 480, 10]);
  const first = p.segments[0];
  assertEquals(
    [first.id, first.category, first.categoryId, first.isThing, first.isCrowd, first.area],
    [8345037, 45, 51, true, false, 24315],
  );
  assertEquals(first.mask.reduce((a, b) => a + b, 0), 24315);
  assertEquals(p.segments.map((s) => s.categoryId), [51, 51, 51, 55, 55, 55, 55, 56, 189, 196]);
  assertEquals(p.segmentIds.filter((v) => v === 0).length, 640 * 480 - 289945);
});

Deno.test("decode: 8- and 16-bit grey masks exactly; RGB and palette masks are rejected", () =>
  withTempDir(async (dir) => {
    const g8 = await put(join(dir, "g8.png"), encodePng(3, 2, "grey8", [0, 1, 2, 254, 255, 7]));
    assertEquals(Array.from((await run(readMask(g8))).data), [0, 1, 2, 254, 255, 7]);
    const g16 = await put(join(dir, "g16.png"), encodePng(3, 1, "grey16", [0, 21840, 65535]));
    const m16 = await run(readMask(g16));
    assert(m16.data instanceof Uint16Array, "16-bit masks decode to Uint16Array");
    assertEquals(Array.from(m16.data), [0, 21840, 65535]);
    const rgb = await put(join(dir, "rgb.png"), encodePng(1, 1, "rgb8", [1, 2, 3]));
    assertEquals(
      (await failure(readMask(rgb))).message,
      "mask has 3 channels; expected 1 (one class index per pixel)",
    );
    const pal = await put(join(dir, "pal.png"), encodePng(2, 1, "palette8", [0, 1], [0, 0, 0, 9, 9, 9]));
    const e = await failure(readMask(pal));
    assertEquals([e._tag, e.file], ["InvalidLabels", pal]);
    assertEquals(
      e.message,
      "palette PNG mask: its class indices cannot be read unchanged; save it as 8-bit greyscale",
    );
  }));

Deno.test("decode: RGB from PNG exactly, grey expanded to RGB, JPEG close to its source", () =>
  withTempDir(async (dir) => {
    const pixels = gradient(4, 3, 5);
    const png = await put(join(dir, "x.png"), encodePng(4, 3, "rgb8", pixels));
    const img = await run(readRgb(png));
    assertEquals([img.width, img.height], [4, 3]);
    assertEquals(Array.from(img.data), Array.from(pixels));
    const grey = await put(join(dir, "g.png"), encodePng(2, 1, "grey8", [10, 200]));
    assertEquals(Array.from((await run(readRgb(grey))).data), [10, 10, 10, 200, 200, 200]);
    const flat = new Uint8Array(16 * 16 * 3).fill(120);
    const jpg = await put(join(dir, "x.jpg"), await encodeJpeg(16, 16, flat));
    assertClose((await run(readRgb(jpg))).data, flat, { atol: 3, rtol: 0 });
    const ids = await put(join(dir, "p.png"), encodePng(2, 1, "rgb8", [1, 0, 0, 77, 1, 2]));
    assertEquals(Array.from((await run(readSegmentIds(ids))).data), [1, 77 + 256 + 2 * 65536]);
  }));
