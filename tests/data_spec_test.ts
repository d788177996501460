import { Effect } from "effect";
import { join } from "node:path";
import { assertEquals, assertThrowsMessage } from "./assert.ts";
import { check as assert, put, withTempDir } from "./data_fixtures.ts";
import { checkClassTable, readClassTable } from "../data/classes.ts";
import {
  cocoPanoptic,
  decodeDatasetSpec,
  folder,
  IMAGENET_MEAN,
  IMAGENET_STD,
  procedural,
  testPipeline,
  trainPipeline,
} from "../dsl/dataset.ts";

/** Runs an effect expected to fail and returns its error. */
const failure = <E>(effect: Effect.Effect<unknown, E>): Promise<E> =>
  Effect.runPromise(Effect.flip(effect) as Effect.Effect<E>);

Deno.test("folder(): fills mmsegmentation-style defaults and keeps the given fields", () => {
  const spec = folder({ root: "../shared/data/camvid", classes: "classes.json", reduceZeroLabel: true });
  assertEquals(spec, {
    _tag: "Folder",
    root: "../shared/data/camvid",
    imageDir: "images",
    annotationDir: "annotations",
    imageSuffixes: [".jpg", ".jpeg", ".png"],
    maskSuffix: ".png",
    classes: "classes.json",
    reduceZeroLabel: true,
    trainSplit: "train",
    testSplit: "val",
  });
  assertEquals(JSON.parse(JSON.stringify(spec)), spec, "specs are JSON data");
});

Deno.test("cocoPanoptic() and procedural(): defaults", () => {
  const coco = cocoPanoptic({ root: "r", subset: ["person"], hidden: ["person"], imageLabels: "image" });
  assertEquals([coco.trainSplit, coco.testSplit, coco.semanticDir, coco.panopticDir], [
    "train2017",
    "val2017",
    "semantic",
    "panoptic",
  ]);
  assertEquals(coco.imageLabels, "image");
  const p = procedural({ numClasses: 21841, height: 32, width: 48, count: 5 });
  assertEquals([p.classesPerImage, p.seed, p.name], [3, 0, "procedural"]);
});

Deno.test("trainPipeline()/testPipeline(): mmsegmentation defaults (mean/std RGB, 512 crop, 0.5–2.0)", () => {
  const t = trainPipeline();
  assertEquals(t.scale, [2048, 512]);
  assertEquals(t.ratioRange, [0.5, 2.0]);
  assertEquals(t.cropSize, [512, 512]);
  assertEquals([t.catMaxRatio, t.flipProb, t.photometric, t.padValue], [0.75, 0.5, true, 0]);
  assertEquals(t.mean, [...IMAGENET_MEAN]);
  assertEquals(t.std, [...IMAGENET_STD]);
  assertEquals(t.mean, [123.675, 116.28, 103.53]);
  assertEquals(testPipeline().resize, null);
  assertEquals(testPipeline({ resize: [2048, 512] }).resize, [2048, 512]);
});

Deno.test("spec decoding: one-line errors that name the file and the field", async () => {
  const cases: [unknown, string][] = [
    [{ _tag: "Lmdb" }, `unknown dataset kind "Lmdb"; expected _tag "Folder", "CocoPanoptic" or "Procedural"`],
    [[1, 2], `unknown dataset kind undefined`],
    [{ _tag: "Folder", classes: "c.json" }, `at ["root"]: Missing key`],
    [
      { _tag: "Folder", root: "r", classes: "c.json", reduceZeroLabels: true },
      `at ["reduceZeroLabels"]: Expected no excess property`,
    ],
    [
      { _tag: "Procedural", numClasses: 21842, height: 8, width: 8, count: 1 },
      `at ["numClasses"]: Expected a value between 1 and 21841`,
    ],
    [
      { _tag: "Procedural", numClasses: 3, height: 8, width: 8, count: 0 },
      `at ["count"]: Expected a value greater than or equal to 1`,
    ],
    [
      { _tag: "CocoPanoptic", root: "r", imageLabels: "pixels" },
      `at ["imageLabels"]: Expected "image" | "crop"`,
    ],
    [{ _tag: "CocoPanoptic", root: "r", subset: ["a", "a"] }, `class "a" is listed twice in subset/hidden`],
  ];
  for (const [value, message] of cases) {
    const e = await failure(decodeDatasetSpec(value, "exp/spec.json"));
    assertEquals(e._tag, "InvalidConfig");
    assertEquals(e.file, "exp/spec.json");
    assert(
      e.message.startsWith(message),
      `${JSON.stringify(e.message)} should start with ${JSON.stringify(message)}`,
    );
    assert(!e.message.includes("\n"), "one line");
  }
});

Deno.test("pipeline constructors reject bad values with the field named", () => {
  assertThrowsMessage(
    () => trainPipeline({ ratioRange: [2, 1] }),
    `at ["ratioRange"]: ratioRange must be [min, max]`,
  );
  assertThrowsMessage(
    () => trainPipeline({ flipProb: 1.5 }),
    `at ["flipProb"]: Expected a value between 0 and 1`,
  );
  assertThrowsMessage(() => trainPipeline({ cropSize: [0, 512] }), `at ["cropSize"][0]`);
  assertThrowsMessage(() => trainPipeline({ std: [1, 0, 1] }), "std must be positive");
  assertThrowsMessage(() => trainPipeline({ catMaxRatio: 0 }), `at ["catMaxRatio"]`);
  assertThrowsMessage(() => testPipeline({ resize: [512] as never }), `at ["resize"]`);
});

Deno.test("class tables: ignore index outside 0..K-1, unique names, one color per class", async () => {
  const names300 = Array.from({ length: 300 }, (_, i) => `c${i}`);
  const colors300 = names300.map(() => [0, 0, 0] as const);
  const e = await failure(
    checkClassTable({ names: names300, colors: colors300, ignoreIndex: 255 }, "t.json"),
  );
  assertEquals(
    e.message,
    "ignore index 255 is a class id (classes are 0..299); choose one outside 0..299, e.g. 300",
  );
  assertEquals(e.file, "t.json");
  const ok = await Effect.runPromise(
    checkClassTable({ names: names300, colors: colors300, ignoreIndex: 65535 }, "t"),
  );
  assertEquals(ok.ignoreIndex, 65535);
  const dup = await failure(
    checkClassTable(
      { names: ["a", "b", "a"], colors: [[0, 0, 0], [0, 0, 0], [0, 0, 0]], ignoreIndex: 255 },
      "t",
    ),
  );
  assertEquals(dup.message, `class name "a" appears twice (classes 0 and 2)`);
  const colors = await failure(
    checkClassTable({ names: ["a", "b"], colors: [[0, 0, 0]], ignoreIndex: 255 }, "t"),
  );
  assertEquals(colors.message, "class table has 2 names but 1 colors");
});

Deno.test("readClassTable: camvid's classes.json gives 11 classes with ignore index 11", async () => {
  const table = await Effect.runPromise(readClassTable("../shared/data/camvid/classes.json"));
  assertEquals(table.names.length, 11);
  assertEquals(table.names[0], "sky");
  assertEquals(table.names[10], "bicyclist");
  assertEquals(table.colors[3], [128, 64, 128]);
  assertEquals(table.ignoreIndex, 11);
});

Deno.test("readClassTable: bad files name the file and the problem", () =>
  withTempDir(async (dir) => {
    const ids = await put(
      join(dir, "ids.json"),
      JSON.stringify({ classes: [{ id: 0, name: "a" }, { id: 2, name: "b" }] }),
    );
    assertEquals(
      (await failure(readClassTable(ids))).message,
      `class ids must be 0..1 in order; entry 1 ("b") has id 2`,
    );
    const color = await put(
      join(dir, "color.json"),
      JSON.stringify({ classes: [{ id: 0, name: "a", color: [0, 0, 300] }] }),
    );
    assertEquals(
      (await failure(readClassTable(color))).message,
      `at ["classes"][0]["color"][2]: Expected a value between 0 and 255`,
    );
    const bad = await put(join(dir, "bad.json"), "{ names: ");
    const e = await failure(readClassTable(bad));
    assertEquals(e.file, bad);
    assert(e.message.startsWith("invalid JSON: "), e.message);
    const missing = await failure(readClassTable(join(dir, "none.json")));
    assert(missing.message.startsWith("cannot read: "), missing.message);
    const inline = await put(join(dir, "inline.json"), JSON.stringify({ names: ["x", "y"], ignoreIndex: 1 }));
    assertEquals(
      (await failure(readClassTable(inline))).message,
      "ignore index 1 is a class id (classes are 0..1); choose one outside 0..1, e.g. 255",
    );
  }));
