import { assert, assertEquals } from "./assert.ts";
import { Effect } from "effect";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { findings, readRunResult, type RowResult } from "../grids/ablation.ts";
import { rowExperiment } from "../experiments/rankseg/grid.ts";

const row = (name: Parameters<typeof rowExperiment>[1], mIoUs: number[], mAP: number | null): RowResult => ({
  dataset: "camvid",
  row: name,
  e: rowExperiment("camvid", name),
  runs: mIoUs.map((mIoU) => ({ mIoU, aAcc: 2 * mIoU, mAP })),
});

Deno.test("ablation findings: step deltas against the seed spread, oracle gain, GT(eval) = top-κ when every image has every class", () => {
  const text = findings([
    row("baseline", [0.20, 0.21, 0.22], null),
    row("mt-ls-ra", [0.24, 0.25, 0.26], 100),
    row("gt-eval", [0.24, 0.25, 0.26], 100),
    row("gt-train-eval", [0.40, 0.41, 0.42], 100),
  ], { mIoU: 0.025, aAcc: 0.3 });
  const line = (start: string) => text.find((l) => l.startsWith(start));
  assertEquals(
    line("- Baseline"),
    "- Baseline: 21.00 mIoU (aAcc 42.00) vs 2.50 (aAcc 30.00) for the trivial predictor, 8.4× its mIoU.",
  );
  // +20 points against a spread of hypot(1, 1) = 1.41.
  assertEquals(
    line("- GT(train+eval)"),
    "- GT(train+eval) oracle vs baseline: +20.00 mIoU (seed spread ±1.41) — helps, beyond the seed spread.",
  );
  assertEquals(
    line("- GT(eval)"),
    "- GT(eval): ground-truth classes at evaluation instead of ξ's top-κ: +0.00 mIoU (seed spread ±1.41) — " +
      "within the seed spread: no clear effect at this scale.",
  );
  assert(text.some((l) => l.includes("GT(eval) equals +MT+LS+RA seed for seed")), "the identical-rows note");
  assert(text.some((l) => l.includes("100 by construction")), "mAP 100 explained");
});

Deno.test("ablation findings: the linear-ψ reference rows are compared with the mask-transformer rows and each other", () => {
  const text = findings([
    row("baseline", [0.20, 0.21, 0.22], null),
    row("mt-ls-ra", [0.24, 0.25, 0.26], 100),
    row("baseline-linear", [0.30, 0.31, 0.32], null),
    row("mt-ls-ra-linear", [0.30, 0.32, 0.34], 100),
  ], { mIoU: 0.025, aAcc: 0.3 });
  const line = (start: string) => text.find((l) => l.startsWith(start));
  assertEquals(
    line("- Linear ψ instead of the mask transformer (baseline)"),
    "- Linear ψ instead of the mask transformer (baseline): +10.00 mIoU (seed spread ±1.41) — helps, beyond the " +
      "seed spread.",
  );
  // +1 point against hypot(1, 2) = 2.24.
  assertEquals(
    line("- +MT+LS+RA over the baseline"),
    "- +MT+LS+RA over the baseline, both with the linear ψ: +1.00 mIoU (seed spread ±2.24) — within the seed " +
      "spread: no clear effect at this scale.",
  );
  assert(
    text.some((l) =>
      l.includes("The linear-ψ baseline beats the mask-transformer baseline beyond the seed spread (+10.00)")
    ),
  );
  assertEquals(rowExperiment("camvid", "baseline-linear").model.psi?._tag, "Linear");
  assertEquals(rowExperiment("camvid", "baseline").model.psi?._tag, "MaskTransformer");
});

Deno.test("ablation findings: the κ sweep names the best κ and which κ fall beyond the seed spread below it", () => {
  const sweepRow = (kappa: number, mIoUs: number[]): RowResult => ({
    dataset: "coco133",
    row: `mt-ls-ra-k${kappa}`,
    e: rowExperiment("coco133", "mt-ls-ra", kappa),
    runs: mIoUs.map((mIoU) => ({ mIoU, aAcc: 0.2, mAP: 10 })),
  });
  const ra = { ...sweepRow(25, [0.10, 0.11, 0.12]), row: "mt-ls-ra" };
  const line = (rows: RowResult[]) =>
    findings(rows, { mIoU: 0.001, aAcc: 0.1 }).find((l) => l.startsWith("- κ sweep"));
  assertEquals(
    line([ra, sweepRow(50, [0.105, 0.115, 0.125]), sweepRow(10, [0.05, 0.06, 0.07])]),
    "- κ sweep: κ=10: 6.00, κ=25: 11.00, κ=50: 11.50; best κ = 50; beyond the seed spread below it: κ=10 " +
      "(paper: best at κ = 50 of 171).",
  );
  assertEquals(
    line([ra, sweepRow(50, [0.105, 0.115, 0.125])]),
    "- κ sweep: κ=25: 11.00, κ=50: 11.50; best κ = 50, but every κ is within the seed spread of it: no clear " +
      "effect at this scale (paper: best at κ = 50 of 171).",
  );
});

Deno.test("ablation reads eval records in percent (and older ones in fractions) as the same run result", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-ablation-"));
  try {
    const base = { split: "val", step: 400, checkpoint: "c", mode: "whole", classes: [], mAcc: null };
    const file = join(dir, "eval-val.json");
    await writeFile(
      file,
      JSON.stringify({ ...base, images: 101, units: "percent", mIoU: 26.93, aAcc: 80.5, mAP: 100 }),
    );
    const current = await Effect.runPromise(readRunResult(file));
    await writeFile(file, JSON.stringify({ ...base, mIoU: 0.2693, aAcc: 0.805, mAP: 100 }));
    const legacy = await Effect.runPromise(readRunResult(file));
    for (const r of [current, legacy]) {
      assert(Math.abs(r.mIoU - 0.2693) < 1e-12 && Math.abs(r.aAcc - 0.805) < 1e-12, JSON.stringify(r));
      assertEquals(r.mAP, 100);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
