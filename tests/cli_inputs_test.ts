/**
 * Image inputs on the command line as a user passes them: a shell's `images/*.jpg` (thousands of paths on
 * one command line) and a folder.
 *
 * Why thousands of paths once crashed every command that ran a model: ONNX Runtime 1.30, when it first
 * creates its environment, matches a regular expression against the whole of `/proc/self/cmdline`, and
 * libstdc++'s regex executor recurses once per character; about 30 KB of command line (here ~600 CamVid
 * paths) overflowed the main thread's 8 MB stack and Deno aborted. cli/command_line_stack.ts raises the stack
 * limit before any model runs.
 */
import { Effect } from "effect";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { cli } from "./cli_runner.ts";
import { assert, assertEquals } from "./assert.ts";
import { experiment, experimentJson } from "../dsl/experiment.ts";
import { classifier, convNet } from "../dsl/model.ts";
import { procedural, testPipeline, trainPipeline } from "../dsl/dataset.ts";
import { evalConfig, trainConfig } from "../dsl/training.ts";
import { writePng } from "../eval/colorize.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";
import { run as trainRun } from "./run_helpers.ts";

/** A classifier small enough that 2,000 images take seconds (classify runs it at 224×224). */
const tinyClassifier = () =>
  experiment({
    name: "tiny-classifier",
    model: classifier({ classes: 5, backbone: convNet({ widths: [4], blocksPerStage: 1 }) }),
    data: {
      dataset: procedural({ numClasses: 5, height: 32, width: 32, count: 4 }),
      train: trainPipeline({ scale: [32, 32], cropSize: [32, 32] }),
      test: testPipeline(),
    },
    train: trainConfig({ steps: 1, batchSize: 2 }),
    eval: evalConfig({ examples: 0 }),
  });

/** A `width`×`height` RGB picture whose colour depends on `seed`. */
const picture = (file: string, seed: number, width = 24, height = 16) =>
  Effect.runPromise(
    writePng(
      file,
      Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 7 + seed * 53) % 256),
      width,
      height,
    ),
  );

const withDir = async (prefix: string, body: (dir: string) => Promise<void>) => {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

/** 2,000 paths of ~70 characters: 140 KB of command line, four times what once aborted Deno. */
const manyPaths = (file: string) => Array.from({ length: 2000 }, () => file);

Deno.test("classify: 2,000 image paths on one command line are all classified", async () => {
  await withDir("kappa-inputs-", async (dir) => {
    const spec = join(dir, "tiny-classifier.json");
    await writeFile(spec, experimentJson(tinyClassifier()));
    const image = join(dir, "a-frame-with-a-name-as-long-as-camvid-ones-0016E5_07959.png");
    await picture(image, 1);
    const r = await cli("classify", spec, ...manyPaths(image), "--json", "--top", "2");
    assertEquals(r.code, 0, r.stderr.slice(-500));
    const results = JSON.parse(r.stdout) as { file: string; top: { class: number }[] }[];
    assertEquals(results.length, 2000);
    assert(results.every((x) => x.file === image && x.top.length === 2), JSON.stringify(results[0]));
  });
});

Deno.test("classify and predict: a folder stands for its images, sorted by name; other files are skipped", async () => {
  await withDir("kappa-inputs-", async (dir) => {
    const folder = join(dir, "images");
    await mkdir(join(folder, "nested"), { recursive: true });
    await picture(join(folder, "b.png"), 2);
    await picture(join(folder, "a.PNG"), 3);
    await picture(join(folder, "c.jpg.png"), 4);
    await picture(join(folder, "nested", "d.png"), 5);
    await writeFile(join(folder, "notes.txt"), "not an image\n");
    const spec = join(dir, "tiny-classifier.json");
    await writeFile(spec, experimentJson(tinyClassifier()));
    const byFolder = await cli("classify", spec, folder, "--json");
    assertEquals(byFolder.code, 0, byFolder.stderr);
    const listed = ["a.PNG", "b.png", "c.jpg.png"].map((f) => join(folder, f));
    assertEquals(JSON.parse(byFolder.stdout).map((x: { file: string }) => x.file), listed);
    // A folder and a file together: the folder's images in its place, the file in its own.
    const mixed = await cli("classify", spec, join(folder, "nested", "d.png"), folder, "--json");
    assertEquals(mixed.code, 0, mixed.stderr);
    assertEquals(
      JSON.parse(mixed.stdout).map((x: { file: string }) => x.file),
      [join(folder, "nested", "d.png"), ...listed],
    );

    const runDir = join(dir, "run");
    const trained = await trainRun(tinyExperiment({ steps: 1, checkpointEvery: 1 }), { out: runDir });
    assert(trained._tag === "Success", String(trained));
    const predicted = await cli("predict", runDir, folder, "--out", join(dir, "pred"));
    assertEquals(predicted.code, 0, predicted.stderr);
    const preds = JSON.parse(readFileSync(join(dir, "pred", "predictions.json"), "utf8")).predictions;
    assertEquals(preds.map((p: { image: string }) => p.image), listed);
    assert(existsSync(join(dir, "pred", "a-mask.png")) && existsSync(join(dir, "pred", "b-overlay.png")));

    // Predict too (CamVid's 701 frames once wrote nothing): 1,000 paths of ~110 characters.
    const long = join(
      dir,
      "a-frame-with-a-name-longer-than-camvid-ones-so-that-few-of-them-make-a-long-line.png",
    );
    await picture(long, 6);
    const paths = Array.from({ length: 1000 }, () => long);
    const many = await cli("predict", runDir, ...paths, "--out", join(dir, "many"));
    assertEquals(many.code, 0, many.stderr.slice(-500));
    const all = JSON.parse(readFileSync(join(dir, "many", "predictions.json"), "utf8")).predictions;
    assertEquals(all.length, 1000);

    // A folder without images is one line naming it.
    await mkdir(join(dir, "empty"));
    const empty = await cli("classify", spec, join(dir, "empty"));
    assertEquals([empty.code, empty.stdout], [1, ""]);
    assertEquals(
      empty.stderr,
      `${join(dir, "empty")}: no images in this folder (looked for .jpg, .jpeg, .png, .webp, .tif, .tiff)\n`,
    );
  });
});
