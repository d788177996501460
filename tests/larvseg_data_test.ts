/** LarvSeg's image-level data source: ccp's labels.json, and one line per bad tag naming the file. */
import { Effect } from "effect";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "./assert.ts";
import { imageLevelSummary, multiHot, readImageLevelLabels } from "../data/image_level.ts";
import { problemLine } from "../data/errors.ts";

const CCP = "../shared/data/ccp/image-level/labels.json";

Deno.test({
  name: "image-level source: ccp's 1,094 tag photos read and summarized",
  ignore: !(await Deno.stat(CCP).then(() => true, () => false)),
  fn: async () => {
    const s = await Effect.runPromise(readImageLevelLabels(CCP, 59));
    const sum = imageLevelSummary(s);
    assertEquals(sum.images, 1094);
    assert(sum.labelsPerImage > 8 && sum.labelsPerImage < 10, String(sum.labelsPerImage)); // README: 8.8
    assertEquals(sum.imagesPerClass.length, 59);
  },
});

Deno.test("image-level source: every bad tag is one line naming the labels file", async () => {
  const root = await mkdtemp(join(tmpdir(), "kappa-il-"));
  try {
    await mkdir(join(root, "images"));
    for (const f of ["a.jpg", "b.jpg", "c.jpg"]) await writeFile(join(root, "images", f), "x");
    const file = join(root, "labels.json");
    await writeFile(
      file,
      JSON.stringify({
        images: "images",
        labels: { "a.jpg": [0, 2, 2], "b.jpg": [], "c.jpg": [1, 7], "d.jpg": [1] },
      }),
    );
    const result = await Effect.runPromise(Effect.flip(readImageLevelLabels(file, 3)));
    assert(result._tag === "BadFiles");
    assertEquals(result.problems.map(problemLine), [
      `${file}: "b.jpg": empty class list`,
      `${file}: "c.jpg": class id 7 is not in the 3-class vocabulary (0..2)`,
      `${file}: "d.jpg": image missing (${join(root, "images", "d.jpg")})`,
    ]);
    // A good file: ids deduplicated and sorted; the multi-hot row the training graph takes.
    await writeFile(file, JSON.stringify({ images: "images", labels: { "a.jpg": [2, 0, 2] } }));
    const ok = await Effect.runPromise(readImageLevelLabels(file, 3));
    assertEquals(ok.samples.map((s) => [s.id, s.classes]), [["a", [0, 2]]]);
    assertEquals(Array.from(multiHot(ok.samples[0], 3)), [1, 0, 1]);
    // A file that is not of the schema: one line naming it.
    await writeFile(file, JSON.stringify({ images: "images", labels: { "a.jpg": ["x"] } }));
    const bad = await Effect.runPromise(Effect.flip(readImageLevelLabels(file, 3)));
    assertEquals(bad._tag, "InvalidLabels");
    assertEquals(bad.file, file);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
