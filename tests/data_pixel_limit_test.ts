/**
 * The loaders' pixel limit: an image whose header promises more pixels than `maxPixels` is refused before
 * any pixel is decoded, with one line naming the file, its size, the limit and the option that raises it;
 * the same limit guards training, evaluation, image-level data, predict and classify (all decode through
 * data/decode.ts).
 *
 * The oversized fixture is a PNG whose header says 16000×16000 but whose pixel data holds one row: if
 * anything decoded it, the error would be "truncated", not the limit (and decoding a real one costs
 * 2.2–2.4 GB).
 */
import { Effect, Stream } from "effect";
import { deflateSync } from "node:zlib";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { assertEquals } from "./assert.ts";
import {
  check as assert,
  encodePng,
  gradient,
  put,
  withTempDir,
  writeFolderDataset,
} from "./data_fixtures.ts";
import { cli } from "./cli_runner.ts";
import { decodeBoth, DEFAULT_MAX_PIXELS, readMask, readRgb, readSegmentIds } from "../data/decode.ts";
import { testLoader, trainLoader } from "../data/loader.ts";
import { decodeDatasetSpec, folder, testPipeline, trainPipeline } from "../dsl/dataset.ts";
import { problemLine } from "../data/errors.ts";

const failure = <E>(effect: Effect.Effect<unknown, E>): Promise<E> =>
  Effect.runPromise(Effect.flip(effect) as Effect.Effect<E>);

const chunk = (type: string, data: Uint8Array): Uint8Array => {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)) >>> 0);
  return out;
};

/** A PNG whose header says `width`×`height` (RGB or grey, 8 bits) but whose data holds only its first row. */
const headerOnlyPng = (width: number, height: number, channels: 1 | 3): Uint8Array => {
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr[8] = 8;
  ihdr[9] = channels === 3 ? 2 : 0;
  const parts = [
    new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(new Uint8Array(1 + width * channels))),
    chunk("IEND", new Uint8Array()),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
};

const TOO_LARGE = (file: string, bytes = "0.77") =>
  `${file}: 16000x16000 pixels (256,000,000) exceeds the loaders' limit of 67,108,864 pixels (8192x8192, ` +
  `the default; decoding it would take over ${bytes} GB); raise the limit with the dataset spec's maxPixels ` +
  `(data.dataset.maxPixels) or downscale the image`;

Deno.test("pixel limit: a 16000x16000 header is refused before decoding, naming the file, its size and the limit", () =>
  withTempDir(async (dir) => {
    assertEquals(DEFAULT_MAX_PIXELS, 8192 * 8192);
    const rgb = await put(join(dir, "huge.png"), headerOnlyPng(16000, 16000, 3));
    const grey = await put(join(dir, "huge-mask.png"), headerOnlyPng(16000, 16000, 1));
    const image = await failure(readRgb(rgb));
    assertEquals([image._tag, problemLine(image)], ["ImageTooLarge", TOO_LARGE(rgb)]);
    const mask = await failure(readMask(grey));
    assertEquals([mask._tag, problemLine(mask)], ["ImageTooLarge", TOO_LARGE(grey, "0.26")]);
    const ids = await failure(readSegmentIds(rgb));
    assertEquals([ids._tag, problemLine(ids)], ["ImageTooLarge", TOO_LARGE(rgb)]);
    // Raising the limit lets the decoder at it: then the fixture's missing rows are what fails.
    const raised = await failure(readRgb(rgb, { maxPixels: 16000 * 16000 }));
    assertEquals([raised._tag, raised.message], [
      "UnreadableFile",
      "cannot decode: vipspng: libpng read error",
    ]);
  }));

Deno.test("pixel limit: training and evaluation loaders refuse the image (in Workers too); the spec's maxPixels sets the limit", () =>
  withTempDir(async (root) => {
    await writeFolderDataset(root, "train", {
      width: 4,
      height: 3,
      samples: { a: [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2] },
    });
    await writeFolderDataset(root, "val", {
      width: 4,
      height: 3,
      samples: { a: [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2] },
    });
    const huge = await put(join(root, "images", "train", "huge.png"), headerOnlyPng(16000, 16000, 3));
    await put(join(root, "annotations", "train", "huge.png"), encodePng(4, 3, "grey8", new Uint8Array(12)));
    const spec = folder({ root, classes: "classes.json" });
    const pipeline = trainPipeline({
      cropSize: [2, 2],
      scale: [4, 3],
      ratioRange: [1, 1],
      photometric: false,
    });
    for (const workers of [0, 1]) {
      const e = await failure(
        Stream.runCollect(
          trainLoader(spec, pipeline, { batchSize: 2, seed: 0, workers }).pipe(Stream.take(1)),
        ),
      );
      assertEquals([e._tag, problemLine(e)], ["ImageTooLarge", TOO_LARGE(huge)], `workers ${workers}`);
    }

    // The option, as a spec file spells it: 4x3 = 12 pixels pass a limit of 12 and fail one of 11.
    const decode = (maxPixels: unknown) =>
      decodeDatasetSpec({ _tag: "Folder", root, classes: "classes.json", maxPixels }, "data.json");
    const at12 = await Effect.runPromise(decode(12));
    const batches = await Effect.runPromise(
      Stream.runCollect(testLoader(at12, testPipeline(), { workers: 0 })),
    );
    assertEquals(batches.length, 1);
    const at11 = await Effect.runPromise(decode(11));
    const e = await failure(Stream.runCollect(testLoader(at11, testPipeline(), { workers: 0 })));
    assertEquals([e._tag, problemLine(e)], [
      "ImageTooLarge",
      `${join(root, "images", "val", "a.png")}: 4x3 pixels (12) exceeds the loaders' limit of 11 pixels; ` +
      `raise the limit with the dataset spec's maxPixels (data.dataset.maxPixels) or downscale the image`,
    ]);
    const bad = await failure(decode(0));
    assertEquals(bad.file, "data.json");
    assert(bad.message.includes("maxPixels"), bad.message);
  }));

Deno.test("pixel limit: classify refuses the image with one line and exit code 1", () =>
  withTempDir(async (dir) => {
    const huge = await put(join(dir, "huge.png"), headerOnlyPng(16000, 16000, 3));
    const small = await put(join(dir, "small.png"), encodePng(8, 8, "rgb8", gradient(8, 8)));
    const r = await cli("classify", "../shared/weights/mobilenet_v2_1.0_224.safetensors", small, huge);
    assertEquals(r.code, 1, r.stderr);
    assertEquals(r.stderr.trim().split("\n").at(-1), TOO_LARGE(huge));
  }));

Deno.test("decodeBoth: when an image and its mask both fail, the image's error is reported, whichever failed first in time", async () => {
  const slow = Effect.andThen(Effect.sleep("30 millis"), Effect.fail("image"));
  const fast = Effect.fail("mask");
  for (let i = 0; i < 3; i++) {
    const e = await Effect.runPromise(Effect.flip(decodeBoth(slow, fast)));
    assertEquals(e, "image");
  }
  assertEquals(await Effect.runPromise(Effect.flip(decodeBoth(Effect.succeed(1), fast))), "mask");
  assertEquals(await Effect.runPromise(decodeBoth(Effect.succeed(1), Effect.succeed(2))), [1, 2]);
});
