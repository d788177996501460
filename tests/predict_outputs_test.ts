/**
 * `predict` gives every input its own outputs (two `x.jpg` from different folders do not share
 * `x-mask.png`), and its summary file lists exactly the images done: rewritten after each image, so
 * Ctrl-C leaves it complete for those, with one line saying how many.
 */
import { Effect, Exit } from "effect";
import sharp from "sharp";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "./assert.ts";
import { cli } from "./cli_runner.ts";
import { train } from "../train/train.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";
import { type ImagePredictor, outputStems, predictFiles } from "../eval/prediction.ts";

/** A 40×40 RGB PNG: horizontal stripes, or vertical ones (`vertical`). */
const stripes = (file: string, vertical: boolean) =>
  sharp(
    Uint8Array.from({ length: 40 * 40 * 3 }, (_, i) => {
      const p = Math.floor(i / 3), [y, x] = [Math.floor(p / 40), p % 40];
      return ((vertical ? x : y) >> 3) % 2 === 0 ? 230 : 20;
    }),
    { raw: { width: 40, height: 40, channels: 3 } },
  ).png().toFile(file);

/** A tiny trained run and two different images that share a file name. */
const fixture = async (root: string) => {
  const run = join(root, "run");
  await Effect.runPromise(
    train(tinyExperiment({ steps: 2 }), { out: run, workers: 0, print: () => {}, skipFinalEval: true }),
  );
  await mkdir(join(root, "a")), await mkdir(join(root, "b"));
  const a = join(root, "a", "x.png"), b = join(root, "b", "x.png");
  await stripes(a, false), await stripes(b, true);
  return { run, a, b };
};

Deno.test("outputStems: later inputs with a taken stem get -2, -3, … (skipping names already taken)", () => {
  assertEquals(outputStems(["a/x.jpg", "b/x.jpg", "c/x.png", "y.jpg"]), ["x", "x-2", "x-3", "y"]);
  assertEquals(outputStems(["x-2.jpg", "a/x.jpg", "b/x.jpg"]), ["x-2", "x", "x-3"]);
});

Deno.test("predict: two inputs named x.png get their own masks, and predictions.json points at each", async () => {
  const root = await mkdtemp(join(tmpdir(), "kappa-predict-names-"));
  try {
    const { run, a, b } = await fixture(root);
    const out = join(root, "pred");
    const r = await cli("predict", run, a, b, "--out", out);
    assertEquals(r.code, 0, r.stderr);
    const entries = JSON.parse(readFileSync(join(out, "predictions.json"), "utf8")).predictions;
    assertEquals(entries.map((p: { image: string; mask: string }) => [p.image, p.mask]), [
      [a, join(out, "x-mask.png")],
      [b, join(out, "x-2-mask.png")],
    ]);
    assert(existsSync(join(out, "x-overlay.png")) && existsSync(join(out, "x-2-overlay.png")));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

Deno.test("predict: Ctrl-C finishes the image in progress, leaves predictions.json listing the images done, says how many", async () => {
  const root = await mkdtemp(join(tmpdir(), "kappa-predict-stop-"));
  try {
    const { run, a } = await fixture(root);
    const out = join(root, "pred");
    const inputs = Array.from({ length: 40 }, () => a);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "cli/main.ts", "predict", run, ...inputs, "--out", out],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Interrupt once the first image's outputs exist (the signal listener is up before the first image).
    while (!existsSync(join(out, "predictions.json"))) await new Promise((r) => setTimeout(r, 20));
    child.kill("SIGINT");
    const result = await child.output();
    const stderr = new TextDecoder().decode(result.stderr);
    assertEquals(result.code, 130, stderr);
    const entries = JSON.parse(readFileSync(join(out, "predictions.json"), "utf8")).predictions as {
      mask: string;
    }[];
    assert(entries.length >= 1 && entries.length < inputs.length, `${entries.length} images listed`);
    assertEquals(
      stderr.trim().split("\n").at(-1),
      `predict: stopped after ${entries.length} of ${inputs.length} images; ${
        join(out, "predictions.json")
      } lists them`,
    );
    assert(entries.every((p) => existsSync(p.mask)), "every listed mask is written");
    assert(!existsSync(join(out, `x-${entries.length + 1}-mask.png`)), "no image after the stop");
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

Deno.test("predictFiles: stopAfter (as Ctrl-C) stops with the summary of the images done", async () => {
  const root = await mkdtemp(join(tmpdir(), "kappa-predict-files-"));
  try {
    const predictor: ImagePredictor = {
      predict: (file, stem) => Effect.succeed({ entry: { file, stem }, line: `${file} done` }),
      summary: (entries) => ({ name: "done.json", json: { entries } }),
    };
    const printed: string[] = [];
    const exit = await Effect.runPromiseExit(
      predictFiles(predictor, ["p/a.jpg", "q/a.jpg", "c.jpg"], root, {
        print: (l) => printed.push(l),
        stopAfter: 2,
      }),
    );
    assert(Exit.isFailure(exit));
    assertEquals(
      String(exit.cause).includes(
        `predict: stopped after 2 of 3 images; ${join(root, "done.json")} lists them`,
      ),
      true,
      String(exit.cause),
    );
    assertEquals(JSON.parse(readFileSync(join(root, "done.json"), "utf8")).entries, [
      { file: "p/a.jpg", stem: "a" },
      { file: "q/a.jpg", stem: "a-2" },
    ]);
    assertEquals(printed, ["p/a.jpg done", "q/a.jpg done"]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
