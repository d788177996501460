import { Effect } from "effect";
import { assertEquals } from "./assert.ts";
import { folderSourceLabels } from "../data/folder.ts";
import {
  applyLabelMapping,
  buildLabelMapping,
  hideClasses,
  imageLabelsOf,
  INVALID,
  type LabelOptions,
} from "../data/labels.ts";
import { folder } from "../dsl/dataset.ts";

const table = {
  names: ["a", "b", "c"],
  colors: [[1, 0, 0], [2, 0, 0], [3, 0, 0]] as const,
  ignoreIndex: 255,
};

/** The mapping of a 3-class folder dataset with the given label options, as an effect. */
const mappingEffect = (options: LabelOptions & { reduceZeroLabel?: boolean }) =>
  buildLabelMapping(
    folderSourceLabels(table, folder({ root: "r", classes: "c.json", ...options })),
    options,
    "spec.json",
  );
const mapping = (options: LabelOptions & { reduceZeroLabel?: boolean }) =>
  Effect.runPromise(mappingEffect(options));

const failure = <E>(effect: Effect.Effect<unknown, E>): Promise<E> =>
  Effect.runPromise(Effect.flip(effect) as Effect.Effect<E>);

Deno.test("label mapping: raw values 0..K-1 are classes, the ignore value is ignore, the rest invalid", async () => {
  const m = await mapping({});
  assertEquals(m.classes.names, ["a", "b", "c"]);
  assertEquals([m.lut[0], m.lut[1], m.lut[2], m.lut[255]], [0, 1, 2, 255]);
  assertEquals([m.lut[3], m.lut[254], m.lut[256]], [INVALID, INVALID, INVALID]);
});

Deno.test("label mapping: reduceZeroLabel makes 0 ignore and v -> v-1 (ADE20K)", async () => {
  const m = await mapping({ reduceZeroLabel: true });
  assertEquals([m.lut[0], m.lut[1], m.lut[2], m.lut[3], m.lut[255]], [255, 0, 1, 2, 255]);
  assertEquals(m.lut[4], INVALID);
  assertEquals(m.invalidHint, "outside the class table (1..3 are classes, 0 and 255 are ignore)");
});

Deno.test("label mapping: reduceZeroLabel with an ignore index in 1..K keeps every class (mmseg order)", async () => {
  // Three classes with training ignore index 3 (= K). mmsegmentation's reduce_zero_label reads the raw mask
  // as: 0 -> ignore, v -> v-1, and a raw 255 stays ignore (255-1 = 254 -> 255). So raw 3 is class 2 ("c"),
  // not ignore: the ignore value must not shadow a class's raw value.
  const m = await mapping({ reduceZeroLabel: true, ignoreIndex: 3 });
  const raw = Uint8Array.from([0, 1, 2, 3, 255, 3, 1]);
  const labels = await Effect.runPromise(applyLabelMapping(raw, m, "mask.png"));
  assertEquals(Array.from(labels), [3, 0, 1, 2, 3, 2, 0]);
  assertEquals(Array.from(imageLabelsOf(labels, 3)), [1, 1, 1]);
  assertEquals(m.lut[4], INVALID);
  assertEquals(m.invalidHint, "outside the class table (1..3 are classes, 0 and 255 are ignore)");
});

Deno.test("label mapping: classMap merges and drops, subset keeps and reorders, hidden marks", async () => {
  const merged = await mapping({ classMap: { b: "a", c: null } });
  assertEquals(merged.classes.names, ["a"]);
  assertEquals([merged.lut[0], merged.lut[1], merged.lut[2]], [0, 0, 255]);
  assertEquals(merged.classes.colors, [[1, 0, 0]]);

  const renamed = await mapping({ classMap: { a: "z" } });
  assertEquals(renamed.classes.names, ["z", "b", "c"]);

  const subset = await mapping({ subset: ["c", "a"], hidden: ["a"] });
  assertEquals(subset.classes.names, ["c", "a"]);
  assertEquals([subset.lut[0], subset.lut[1], subset.lut[2]], [1, 255, 0]);
  assertEquals(Array.from(subset.hidden), [0, 1]);

  const ignore = await mapping({ ignoreIndex: 7 });
  assertEquals([ignore.classes.ignoreIndex, ignore.lut[7], ignore.lut[255], ignore.lut[0]], [
    7,
    7,
    INVALID,
    0,
  ]);
});

Deno.test("label mapping: unknown class names are errors naming the spec file", async () => {
  const sub = await failure(mappingEffect({ subset: ["a", "dog"] }));
  assertEquals([sub._tag, sub.file], ["InvalidConfig", "spec.json"]);
  assertEquals(sub.message, `unknown class "dog" in subset; known: a, b, c`);
  assertEquals(
    (await failure(mappingEffect({ classMap: { x: "a" } }))).message,
    `unknown class "x" in classMap; known: a, b, c`,
  );
  assertEquals(
    (await failure(mappingEffect({ classMap: { b: "a" }, hidden: ["b"] }))).message,
    `unknown class "b" in hidden; known: a, c`,
  );
});

Deno.test("applyLabelMapping: maps through the table and names out-of-table values and pixel counts", async () => {
  const m = await mapping({ subset: ["c", "a"] });
  const ids = await Effect.runPromise(applyLabelMapping(Uint8Array.from([0, 1, 2, 255]), m, "m.png"));
  assertEquals(Array.from(ids), [1, 255, 0, 255]);
  const e = await failure(applyLabelMapping(Uint8Array.from([0, 7, 7, 9, 255]), m, "masks/x.png"));
  assertEquals([e._tag, e.file], ["InvalidLabels", "masks/x.png"]);
  assertEquals(
    e.message,
    "mask values 7, 9 (3 pixels) outside the class table (0..2 are classes, 255 is ignore)",
  );
});

Deno.test("imageLabelsOf: multi-hot over K, ignoring ignore and out-of-range values", () => {
  assertEquals(Array.from(imageLabelsOf(Int32Array.from([3, 0, 0, 255, -1, 3, 7]), 5)), [1, 0, 0, 1, 0]);
  assertEquals(Array.from(imageLabelsOf(new Int32Array(0), 3)), [0, 0, 0]);
});

Deno.test("hideClasses: hidden classes become ignore, others stay", () => {
  const labels = Int32Array.from([0, 1, 2, 1, 255]);
  hideClasses(labels, Uint8Array.from([0, 1, 0]), 255);
  assertEquals(Array.from(labels), [0, 255, 2, 255, 255]);
});
