/**
 * Bad input: each kind of broken file gets a clear error naming the file and what is wrong; `skipBad`
 * skips the bad files and reports how many.
 */
import { Effect, References, Stream } from "effect";
import sharp from "sharp";
import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import {
  check as assert,
  encodePng,
  gradient,
  put,
  withTempDir,
  writeFolderDataset,
} from "./data_fixtures.ts";
import type { CocoDataset } from "../data/coco.ts";
import { type DataError, problemLine } from "../data/errors.ts";
import { trainLoader } from "../data/loader.ts";
import { openDataset } from "../data/open.ts";
import { cocoPanoptic, folder, trainPipeline } from "../dsl/dataset.ts";
import { validateSplit } from "../data/validate.ts";

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect);
const failure = <E>(effect: Effect.Effect<unknown, E>): Promise<E> =>
  Effect.runPromise(Effect.flip(effect) as Effect.Effect<E>);

const W = 4, H = 3;
const GOOD1 = [0, 0, 1, 1, 0, 2, 2, 255, 1, 1, 1, 1];
const GOOD2 = [2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 255, 255];

/** A 3-class folder dataset with two good samples and one of each folder problem; returns file paths. */
const brokenFolder = async (root: string) => {
  await writeFolderDataset(root, "train", { width: W, height: H, samples: { good1: GOOD1, good2: GOOD2 } });
  const img = (name: string) => join(root, "images", "train", name);
  const ann = (name: string) => join(root, "annotations", "train", name);
  const mask = encodePng(W, H, "grey8", GOOD1);
  const jpeg = await sharp(gradient(64, 48), { raw: { width: 64, height: 48, channels: 3 } }).jpeg()
    .toBuffer();
  const files = {
    corrupt: await put(img("corrupt.png"), "this is not a PNG"),
    truncated: await put(img("truncated.jpg"), new Uint8Array(jpeg.subarray(0, jpeg.length >> 1))),
    sizeImage: await put(img("size.png"), encodePng(W, H, "rgb8", gradient(W, H))),
    sizeMask: await put(ann("size.png"), encodePng(W - 1, H, "grey8", GOOD1.slice(0, (W - 1) * H))),
    valuesMask: await put(ann("values.png"), encodePng(W, H, "grey8", GOOD1.map((v, i) => (i < 2 ? 7 : v)))),
    lonely: await put(img("lonely.png"), encodePng(W, H, "rgb8", gradient(W, H))),
    orphan: await put(ann("orphan.png"), mask),
  };
  await put(ann("corrupt.png"), mask);
  await put(ann("truncated.png"), encodePng(64, 48, "grey8", new Uint8Array(64 * 48)));
  await put(img("values.png"), encodePng(W, H, "rgb8", gradient(W, H)));
  return files;
};

const spec = (root: string) => folder({ root, classes: "classes.json" });

Deno.test("bad input (folder): one error per bad file, each naming the file and the problem", () =>
  withTempDir(async (root) => {
    const f = await brokenFolder(root);
    const d = await run(openDataset(spec(root), "train"));
    // Listing finds the image without a mask and the mask without an image.
    assertEquals(d.problems.map(problemLine), [
      `${f.lonely}: no mask ${join(root, "annotations", "train", "lonely.png")}`,
      `${f.orphan}: mask without an image`,
    ]);
    const readError = async (id: string): Promise<DataError> =>
      await failure(d.read(d.samples.find((s) => s.id === id)!));
    const corrupt = await readError("corrupt");
    assertEquals([corrupt._tag, corrupt.file, corrupt.message], [
      "UnreadableFile",
      f.corrupt,
      "not a decodable image (corrupt or unsupported format)",
    ]);
    const truncated = await readError("truncated");
    assertEquals([truncated._tag, truncated.file], ["UnreadableFile", f.truncated]);
    assert(truncated.message.startsWith("truncated or corrupt image data"), truncated.message);
    const size = await readError("size");
    assertEquals([size._tag, size.file, size.message], [
      "InvalidLabels",
      f.sizeMask,
      "mask is 3x3 but its image size.png is 4x3",
    ]);
    const values = await readError("values");
    assertEquals([values._tag, values.file, values.message], [
      "InvalidLabels",
      f.valuesMask,
      "mask value 7 (2 pixels) outside the class table (0..2 are classes, 255 is ignore)",
    ]);
  }));

Deno.test("bad input (folder): validation fails listing every problem, one line each; skipBad reports the count", () =>
  withTempDir(async (root) => {
    const f = await brokenFolder(root);
    const e = await failure(validateSplit(spec(root), "train"));
    assertEquals(e._tag, "BadFiles");
    const lines = e._tag === "BadFiles" ? e.problems.map(problemLine) : [];
    assertEquals(lines.length, 6);
    assertEquals(lines.map((l) => l.slice(0, l.indexOf(": "))), [
      f.lonely,
      f.orphan,
      f.corrupt,
      f.sizeMask,
      f.truncated,
      f.valuesMask,
    ]);
    assert(e.message.startsWith(`6 bad files in ${root.split("/").pop()}/train:\n`), e.message);
    assertEquals(e.message.split("\n").length, 7, "a summary line, then one line per problem");

    const report = await run(validateSplit(spec(root), "train", { skipBad: true }));
    assertEquals([report.images, report.valid, report.problems.length], [7, 2, 6]);
  }));

Deno.test("bad input (folder): the train loader fails on them, or skips them with skipBad", () =>
  withTempDir(async (root) => {
    await brokenFolder(root);
    const pipeline = trainPipeline({
      cropSize: [2, 2],
      scale: [4, 3],
      ratioRange: [1, 1],
      photometric: false,
    });
    const options = { batchSize: 2, seed: 3, workers: 0, concurrency: 2 };
    const listing = await failure(Stream.runCollect(trainLoader(spec(root), pipeline, options)));
    assertEquals([listing._tag, listing.message.split("\n")[0]], [
      "BadFiles",
      `2 bad files in ${root.split("/").pop()}/train:`,
    ]);
    // skipBad: 6 listed samples, 4 of them bad; an epoch (3 batches of 2) yields only the 2 good samples.
    const batches = await run(
      Stream.runCollect(trainLoader(spec(root), pipeline, { ...options, skipBad: true }).pipe(Stream.take(2)))
        .pipe(
          Effect.provideService(References.MinimumLogLevel, "Error"), // the skip warnings are expected here
        ),
    );
    const epoch0 = batches.filter((b) => b.position.epoch === 0).flatMap((b) => b.ids);
    assertEquals(epoch0.sort(), ["good1", "good2"]);
  }));

Deno.test("bad input: an empty split and a missing split are errors naming the folder", () =>
  withTempDir(async (root) => {
    await writeFolderDataset(root, "train", { width: 2, height: 2, samples: { a: [0, 0, 0, 0] } });
    await put(join(root, "images", "val", "notes.txt"), "not an image");
    const empty = await failure(openDataset(spec(root), "val"));
    assertEquals([empty._tag, empty.file, empty.message], [
      "EmptySplit",
      join(root, "images", "val"),
      `split "val" has no images (.jpg, .jpeg, .png)`,
    ]);
    const missing = await failure(openDataset(spec(root), "test"));
    assertEquals([missing._tag, missing.message], [
      "InvalidConfig",
      `split "test" does not exist (splits found: train, val)`,
    ]);
  }));

/** A tiny COCO panoptic dataset: categories person (1, thing) and sky (7, stuff); images a..d. */
const brokenCoco = async (root: string) => {
  const w = 3, h = 2;
  const segments = { a: [[1, 1], [2, 7]], b: [[1, 999]], c: [[1, 1]], d: [[1, 7]] } as const;
  // Panoptic ids: a = [1 1 2 / 2 2 0]; b = [1 ...]; c has an extra id 258 (RGB 2,1,0); d = [1 ...].
  const ids = {
    a: [1, 1, 2, 2, 2, 0],
    b: [1, 1, 1, 0, 0, 0],
    c: [1, 1, 258, 258, 258, 0],
    d: [1, 1, 1, 1, 1, 1],
  };
  const semantic = {
    a: [1, 1, 7, 7, 7, 0],
    b: [0, 0, 0, 0, 0, 0],
    c: [1, 1, 0, 0, 0, 0],
    d: [7, 7, 7, 3, 3, 7],
  };
  const files: Record<string, string> = {};
  for (const [i, stem] of ["a", "b", "c", "d"].entries()) {
    await put(join(root, "images", "train", `${stem}.png`), encodePng(w, h, "rgb8", gradient(w, h, i)));
    files[`${stem}.semantic`] = await put(
      join(root, "semantic", "train", `${stem}.png`),
      encodePng(w, h, "grey8", semantic[stem as keyof typeof semantic]),
    );
    const rgb = ids[stem as keyof typeof ids].flatMap((id) => [id & 255, (id >> 8) & 255, id >> 16]);
    files[`${stem}.panoptic`] = await put(
      join(root, "panoptic", "train", `${stem}.png`),
      encodePng(w, h, "rgb8", rgb),
    );
  }
  const area = (stem: keyof typeof ids, id: number) => ids[stem].filter((v) => v === id).length;
  const json = {
    info: { description: "fixture" },
    images: ["a", "b", "c", "d"].map((s, i) => ({ id: i + 1, file_name: `${s}.png`, width: w, height: h })),
    annotations: (["a", "b", "c", "d"] as const).map((s, i) => ({
      image_id: i + 1,
      file_name: `${s}.png`,
      segments_info: segments[s].map(([id, category_id]) => ({
        id,
        category_id,
        iscrowd: 0,
        area: area(s, id),
        bbox: [0, 0, 1, 1],
      })),
    })),
    categories: [{ id: 1, name: "person", isthing: 1, supercategory: "person" }, {
      id: 7,
      name: "sky",
      isthing: 0,
    }],
  };
  files.json = await put(join(root, "panoptic", "panoptic_train.json"), JSON.stringify(json));
  return files;
};

Deno.test("bad input (COCO panoptic): unknown category id, PNG id without segment, mask value not a category", () =>
  withTempDir(async (root) => {
    const f = await brokenCoco(root);
    const cocoSpec = cocoPanoptic({ root, trainSplit: "train" });
    const d = (await run(openDataset(cocoSpec, "train"))) as CocoDataset;
    assertEquals(d.classes.names, ["person", "sky"]);
    assertEquals(d.problems.map(problemLine), [`${f.json}: b.png: segment 1 has unknown category id 999`]);
    assertEquals(d.samples.map((s) => s.id), ["a", "c", "d"]);

    const byId = (id: string) => d.samples.find((s) => s.id === id)!;
    const a = await run(d.read(byId("a")));
    assertEquals(Array.from(a.labels), [0, 0, 1, 1, 1, 255]);
    const pa = await run(d.readPanoptic(byId("a")));
    assertEquals(pa.segments.map((s) => [s.id, s.category, s.isThing, s.area]), [[1, 0, true, 2], [
      2,
      1,
      false,
      3,
    ]]);
    assertEquals(Array.from(pa.segments[1].mask), [0, 0, 1, 1, 1, 0]);

    const orphan = await failure(d.readPanoptic(byId("c")));
    assertEquals([orphan._tag, orphan.file, orphan.message], [
      "InvalidLabels",
      f["c.panoptic"],
      "segment id 258 (RGB 2,1,0; 3 pixels) has no entry in panoptic_train.json",
    ]);
    const value = await failure(d.read(byId("d")));
    assertEquals([value._tag, value.file, value.message], [
      "InvalidLabels",
      f["d.semantic"],
      "mask value 3 (2 pixels) not a category id of panoptic_train.json (0 = unlabeled)",
    ]);

    const report = await run(validateSplit(cocoSpec, "train", { skipBad: true }));
    assertEquals([report.images, report.valid, report.problems.length], [4, 1, 3]);
  }));
