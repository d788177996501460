import { Effect } from "effect";
import { assertEquals, assertNotEquals } from "./assert.ts";
import { check as assert } from "./data_fixtures.ts";
import { openDataset } from "../data/open.ts";
import { generateScene, proceduralIgnore, proceduralNames } from "../data/procedural.ts";
import { procedural } from "../dsl/dataset.ts";

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect);

Deno.test("procedural: synthetic class names and ignore index, 21,841 classes at most", () => {
  assertEquals(proceduralNames(3), ["synthetic-00000", "synthetic-00001", "synthetic-00002"]);
  assertEquals(
    [proceduralIgnore(21), proceduralIgnore(254), proceduralIgnore(255), proceduralIgnore(21841)],
    [
      255,
      255,
      65535,
      65535,
    ],
  );
});

Deno.test("procedural: scenes are a pure function of (seed, split, index), with few classes each", () => {
  const spec = procedural({
    numClasses: 21841,
    height: 40,
    width: 56,
    count: 20,
    classesPerImage: 4,
    seed: 7,
  });
  const a = generateScene(spec, 0, 3, 65535);
  const again = generateScene(spec, 0, 3, 65535);
  assertEquals(a.image, again.image);
  assertEquals(a.labels, again.labels);
  assertNotEquals(generateScene(spec, 1, 3, 65535).labels, a.labels, "another split, another scene");
  let rims = 0;
  for (let i = 0; i < 20; i++) {
    const { image, labels } = generateScene(spec, 0, i, 65535);
    assertEquals([image.length, labels.length], [40 * 56 * 3, 40 * 56]);
    const classes = new Set([...labels].filter((v) => v !== 65535));
    assert(classes.size >= 1 && classes.size <= 4, `${classes.size} classes`);
    for (const c of classes) assert(c >= 0 && c < 21841, `class ${c}`);
    if (labels.includes(65535)) rims++;
  }
  assert(rims > 0, "shape boundaries carry the ignore rim");
});

Deno.test("procedural: opened as a dataset, with subset remapping and per-split samples", async () => {
  const spec = procedural({ numClasses: 6, height: 16, width: 16, count: 5, classesPerImage: 6, seed: 3 });
  const d = await run(openDataset(spec, "val"));
  assertEquals(d.samples.map((s) => s.id), [0, 1, 2, 3, 4].map((i) => `procedural-val-00000${i}`));
  assertEquals([d.classes.names.length, d.classes.ignoreIndex], [6, 255]);
  const full = await run(d.read(d.samples[2]));
  const sub = await run(openDataset({ ...spec, subset: ["synthetic-00004", "synthetic-00001"] }, "val"));
  const part = await run(sub.read(sub.samples[2]));
  assertEquals(sub.classes.names, ["synthetic-00004", "synthetic-00001"]);
  const expected = Array.from(full.labels, (v) => (v === 4 ? 0 : v === 1 ? 1 : 255));
  assertEquals(Array.from(part.labels), expected);
  assertEquals(part.image, full.image);
});
