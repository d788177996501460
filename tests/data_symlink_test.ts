/**
 * Symlinks and paths that leave the dataset: symlinked images and masks that resolve to files inside the
 * dataset root are followed; the others (outside the root, broken) are named, one problem each, never
 * skipped silently; `labels.json` entries that leave the image folder (`../x.jpg`, absolute paths, links)
 * are errors naming labels.json, the entry and why.
 */
import { Effect } from "effect";
import { mkdir, realpath, symlink } from "node:fs/promises";
import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import { encodePng, gradient, put, withTempDir, writeFolderDataset } from "./data_fixtures.ts";
import { openDataset } from "../data/open.ts";
import { problemLine } from "../data/errors.ts";
import { readImageLevelLabels } from "../data/image_level.ts";
import { cocoPanoptic, folder } from "../dsl/dataset.ts";

const failure = <E>(effect: Effect.Effect<unknown, E>): Promise<E> =>
  Effect.runPromise(Effect.flip(effect) as Effect.Effect<E>);

const MASK = [0, 1, 2, 0, 1, 2];

/** A dataset whose train images and masks are all symlinks into `root/store`; returns the root. */
const linkedFolder = async (root: string) => {
  await writeFolderDataset(root, "val", { width: 3, height: 2, samples: { v: MASK } });
  for (const stem of ["a", "b"]) {
    await put(join(root, "store", `${stem}.png`), encodePng(3, 2, "rgb8", gradient(3, 2)));
    await put(join(root, "store", `${stem}-mask.png`), encodePng(3, 2, "grey8", MASK));
    await mkdir(join(root, "images", "train"), { recursive: true });
    await mkdir(join(root, "annotations", "train"), { recursive: true });
    // One relative link and one absolute: both resolve inside the root.
    await symlink(
      stem === "a" ? join("..", "..", "store", `${stem}.png`) : join(root, "store", `${stem}.png`),
      join(root, "images", "train", `${stem}.png`),
    );
    await symlink(join(root, "store", `${stem}-mask.png`), join(root, "annotations", "train", `${stem}.png`));
  }
  return root;
};

Deno.test("symlinks: images and masks linked to files inside the dataset root are followed", () =>
  withTempDir(async (root) => {
    await linkedFolder(root);
    const d = await Effect.runPromise(openDataset(folder({ root, classes: "classes.json" }), "train"));
    assertEquals([d.samples.map((s) => s.id), d.problems], [["a", "b"], []]);
    const image = await Effect.runPromise(d.read(d.samples[0]));
    assertEquals([image.width, image.height, Array.from(image.labels)], [3, 2, MASK]);
    // A root that is itself a link (to the folder holding the links) works the same.
    await symlink(root, `${root}-link`);
    try {
      const viaLink = await Effect.runPromise(
        openDataset(folder({ root: `${root}-link`, classes: "classes.json" }), "train"),
      );
      assertEquals(viaLink.samples.map((s) => s.id), ["a", "b"]);
    } finally {
      await Deno.remove(`${root}-link`);
    }
  }));

Deno.test("symlinks: links leaving the dataset root or pointing nowhere are named, not skipped", () =>
  withTempDir(async (dir) => {
    const root = join(dir, "data");
    const outside = await put(join(dir, "elsewhere", "x.png"), encodePng(3, 2, "rgb8", gradient(3, 2)));
    await writeFolderDataset(root, "train", { width: 3, height: 2, samples: { good: MASK } });
    const real = await realpath(root);
    const img = (name: string) => join(root, "images", "train", name);
    await symlink(outside, img("out.png"));
    await symlink(join(root, "missing.png"), img("broken.png"));
    await put(join(root, "annotations", "train", "out.png"), encodePng(3, 2, "grey8", MASK));
    await put(join(root, "annotations", "train", "broken.png"), encodePng(3, 2, "grey8", MASK));
    const d = await Effect.runPromise(openDataset(folder({ root, classes: "classes.json" }), "train"));
    assertEquals(d.samples.map((s) => s.id), ["good"]);
    assertEquals(d.imageCount, 3);
    assertEquals(d.problems.map(problemLine), [
      `${img("broken.png")}: broken symlink (its target ${join(root, "missing.png")} does not exist)`,
      `${img("out.png")}: symlink to ${await realpath(
        outside,
      )}, outside the dataset root ${real}: not followed`,
    ]);

    // A split of nothing but such links: the error names them instead of "no images".
    await Deno.remove(img("good.png"));
    const empty = await failure(openDataset(folder({ root, classes: "classes.json" }), "train"));
    assertEquals([empty._tag, empty.file, empty.message], [
      "EmptySplit",
      join(root, "images", "train"),
      `split "train" has no images (.jpg, .jpeg, .png) but 2 symlinks that were not followed: ` +
      `broken.png (broken symlink (its target ${join(root, "missing.png")} does not exist)), ` +
      `out.png (symlink to ${await realpath(outside)}, outside the dataset root ${real}: not followed)`,
    ]);
  }));

Deno.test("symlinks: a COCO panoptic split of linked images is read, not reported empty", () =>
  withTempDir(async (root) => {
    await put(join(root, "store", "a.png"), encodePng(2, 1, "rgb8", gradient(2, 1)));
    await mkdir(join(root, "images", "train"), { recursive: true });
    await symlink(join(root, "store", "a.png"), join(root, "images", "train", "a.png"));
    await put(join(root, "semantic", "train", "a.png"), encodePng(2, 1, "grey8", [1, 1]));
    await put(join(root, "panoptic", "train", "a.png"), encodePng(2, 1, "rgb8", [1, 0, 0, 1, 0, 0]));
    await put(
      join(root, "panoptic", "panoptic_train.json"),
      JSON.stringify({
        images: [{ id: 1, file_name: "a.png", width: 2, height: 1 }],
        annotations: [{
          image_id: 1,
          file_name: "a.png",
          segments_info: [{ id: 1, category_id: 1, area: 2, iscrowd: 0, bbox: [0, 0, 2, 1] }],
        }],
        categories: [{ id: 1, name: "person", isthing: 1, supercategory: "person" }],
      }),
    );
    const d = await Effect.runPromise(openDataset(cocoPanoptic({ root, trainSplit: "train" }), "train"));
    assertEquals([d.samples.map((s) => s.id), d.problems], [["a"], []]);
  }));

Deno.test("labels.json: entries must stay inside the image folder; the error names the file, the entry and why", () =>
  withTempDir(async (root) => {
    const file = join(root, "tags", "labels.json");
    await put(join(root, "tags", "images", "a.jpg"), "x");
    await put(join(root, "tags", "x.jpg"), "x");
    await put(join(root, "secret.jpg"), "x");
    await symlink(join(root, "secret.jpg"), join(root, "tags", "images", "link.jpg"));
    const images = await realpath(join(root, "tags", "images"));
    await put(
      file,
      JSON.stringify({
        images: "images",
        labels: { "a.jpg": [0], "../x.jpg": [1], [join(root, "secret.jpg")]: [1], "link.jpg": [0] },
      }),
    );
    const e = await failure(readImageLevelLabels(file, 3));
    assertEquals(e._tag, "BadFiles");
    assertEquals(e._tag === "BadFiles" ? e.problems.map(problemLine) : [], [
      `${file}: "../x.jpg": leaves the image folder ${
        join(root, "tags", "images")
      } (entries name files inside it)`,
      `${file}: "${
        join(root, "secret.jpg")
      }": an absolute path; entries name files inside the image folder ` +
      `${join(root, "tags", "images")}`,
      `${file}: "link.jpg": a symlink to ${await realpath(
        join(root, "secret.jpg"),
      )}, outside the image folder ` +
      `${images}: not followed`,
    ]);
  }));
