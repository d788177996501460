/** The LarvSeg grid: every checked-in row decodes, the novel-class rule, and the RESULTS.md findings. */
import { Effect } from "effect";
import { readdirSync } from "node:fs";
import { assert, assertEquals } from "./assert.ts";
import { loadExperiment } from "../dsl/experiment.ts";
import { imageLevelSources } from "../dsl/dataset.ts";
import { novelClasses, rowExperiment, ROWS } from "../experiments/larvseg/grid.ts";
import { budgetProbeLines, larvSegFindings, type LarvSegRow } from "../grids/larvseg.ts";

Deno.test("LarvSeg grid: 2 datasets × 6 rows + 4 ccp+clothing rows + 2 budget probes checked in, each decodes and names its novel classes", async () => {
  const files = readdirSync("experiments/larvseg").filter((f) => f !== "grid.ts").sort();
  assertEquals(files.length, 18);
  for (const f of files) {
    const e = await Effect.runPromise(loadExperiment(`experiments/larvseg/${f}`));
    assert((e.eval.novel ?? []).length > 0, f);
  }
  // ccp: 51 classes occur in val, 48 without background/skin/hair, every third from the second: 16.
  assertEquals(novelClasses("ccp").length, 16);
  assertEquals(novelClasses("ccp").slice(0, 3), ["bag", "blouse", "bracelet"]);
  assertEquals(novelClasses("coco133").length, 41);
  const ccp = rowExperiment("ccp", "ca-cross");
  assertEquals(ccp.data.dataset.hidden, [...novelClasses("ccp")]);
  assertEquals(imageLevelSources(ccp.data.imageLevel)[0].ratio, 0.5);
  assertEquals(rowExperiment("ccp", "full").data.dataset.hidden, undefined);
  // ccp+clothing's fully supervised row hides nothing and scores clothing/'s novel classes.
  const full = await Effect.runPromise(loadExperiment("experiments/larvseg/ccp+clothing-full.ts"));
  assertEquals([full.data.dataset.hidden, full.data.imageLevel], [undefined, undefined]);
  assertEquals(full.eval.novel, rowExperiment("ccp+clothing", "ca-cross").eval.novel);
  assertEquals(rowExperiment("coco133", "ca-cross").data.imageLevel, undefined);
  assertEquals(ROWS.length, 6);
  // The probe: the image-level row at 4× the steps, validated along the way, under a name of its own.
  const probe = await Effect.runPromise(loadExperiment("experiments/larvseg/curve-ccp.ts"));
  assertEquals([probe.name, probe.train.steps, probe.train.evalEvery], [
    "larvseg-ccp-image-level-curve",
    600,
    150,
  ]);
  assertEquals(rowExperiment("ccp", "image-level").name, "larvseg-ccp-image-level");
});

Deno.test("LarvSeg findings: deltas against the combined seed spread, the paper's beside", () => {
  const e = rowExperiment("ccp", "image-level");
  const row = (name: string, novel: number[], base: number[]): LarvSegRow => ({
    dataset: "ccp",
    row: name,
    file: `${name}.ts`,
    e,
    runs: novel.map((n, i) => ({ mIoU: 0, base: base[i], novel: n, aAcc: 0 })),
  });
  const out = larvSegFindings([
    row("image-level", [2, 4], [30, 30]),
    row("ca-cross", [6, 8], [30, 31]),
  ]);
  // novel: +4.00, spread hypot(√2, √2) = 2.00 → beyond; base +0.50, spread hypot(0, 0.71) = 0.71 → within.
  const line = out.find((l) => l.startsWith("- CA-classifier (cross-image bank)"))!;
  assertEquals(
    line,
    "- CA-classifier (cross-image bank) over the image-level baseline: novel +4.00 (±2.00, beyond the spread), " +
      "base +0.50 (±0.71, within the seed spread) — paper: novel +6.0.",
  );
});

Deno.test("LarvSeg findings: with a tag-photo source, the halved pixel supervision is stated", () => {
  const row = (name: "seg-only" | "image-level"): LarvSegRow => ({
    dataset: "ccp",
    row: name,
    file: `${name}.ts`,
    e: rowExperiment("ccp", name),
    runs: [{ mIoU: 0, base: 10, novel: 0, aAcc: 0 }],
  });
  const out = larvSegFindings([row("seg-only"), row("image-level")]);
  assertEquals(
    out.at(-1),
    "The rows with tag photos train on 4 pixel-labelled images per step, the others on 8 (the other 4 " +
      "places are tag photos, the official 1:1 mix): their base mIoU reflects that smaller mask " +
      "supervision as well as the image-level terms.",
  );
  // coco133's image-level labels come from the same photos: no such line.
  const coco = larvSegFindings([{ ...row("seg-only"), e: rowExperiment("coco133", "image-level") }]);
  assertEquals(coco.some((l) => l.startsWith("The rows with tag photos")), false);
});

Deno.test("LarvSeg budget probe: each evaluation's all / base / novel, and what the last says", () => {
  const p = (step: number, novel: number) => ({ step, mIoU: 5, seconds: null, base: 7.5, novel });
  assertEquals(budgetProbeLines([], "ccp"), []);
  const zero = budgetProbeLines([p(150, 0), p(300, 0)], "ccp");
  assertEquals(
    zero[1],
    "Budget probe (`experiments/larvseg/curve-ccp.ts`: the image-level row, one seed, validated every 150 " +
      "steps; all / base / novel mIoU): step 150: 5.00 / 7.50 / 0.00; step 300: 5.00 / 7.50 / 0.00. Novel IoU " +
      "is still 0 after 300 steps: at this scale the image-level signal alone does not make any novel class " +
      "win a pixel's argmax.",
  );
  assertEquals(
    budgetProbeLines([p(150, 0), p(300, 1.25)], "ccp")[1].split(". ").at(-1),
    "Novel IoU is 1.25 after 300 steps: the image-level signal shows with a longer schedule.",
  );
  // A few pixels (0.02 points) are a trace, not a signal.
  assertEquals(
    budgetProbeLines([p(150, 0), p(300, 0.02)], "coco133")[1].split("steps): ").at(-1)!.split(". ").at(-1),
    "Novel IoU is 0.02 after 300 steps: a trace (a few pixels), below the 0.5 points this section counts as a " +
      "signal; at this scale the image-level signal alone makes hardly any novel class win a pixel's argmax.",
  );
});
