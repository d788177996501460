/**
 * `deno task grid xi-sources [--seeds 3] [--steps N] [--only REGEX] [--report-only]`: trains RankSeg's ξ on
 * ccp with each mix of image-level sources (`experiments/xi-sources/<row>.ts`, every seed; resumable like
 * the other grids; `--slurm` submits the runs as a Slurm job array, grids/slurm/), evaluates ξ's mAP and
 * recall@κ on ccp val, and writes RESULTS.md's "ξ from image-level sources" section: mean ± std over seeds per
 * mix, and each mix's change over the pixel-derived labels against the two rows' combined seed spread.
 */
import { Effect } from "effect";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  type Experiment,
  imageLevelShares,
  imageLevelSources,
  loadExperiment,
  readEvalRecord,
} from "../mod.ts";
import { KAPPA, ROWS } from "../experiments/xi-sources/grid.ts";
import { recordSection, table } from "../figures/markdown.ts";
import { finishedRun, gridFlags, type GridRun, overrideFlags, seedRun, withGridFrozen } from "./grid_runs.ts";
import { slurmRequested } from "./slurm/slurm_flags.ts";
import { submitGrid } from "./slurm/submit.ts";
import { mean, std } from "../figures/stats.ts";

const SPECS = "experiments/xi-sources";
const RUNS = "runs/xi-sources";
export const SECTION = "ξ from image-level sources (ccp)";

/** What each row adds to the pixel-derived labels, for the table. */
export const LABELS: Record<string, string> = {
  pixel: "pixel-derived labels only",
  "ccp-tags": "+ ccp tag photos (complete)",
  clothing: "+ clothing/ photos (partial)",
  "clothing-complete": "+ clothing/ photos read as complete",
  both: "+ ccp tags (complete) + clothing/ (partial)",
};

/** One run's ξ metrics, in percent. */
export interface XiRun {
  readonly mAP: number;
  readonly recall: number;
}

export interface XiRow {
  readonly row: string;
  readonly file: string;
  readonly e: Experiment;
  readonly runs: readonly XiRun[];
}

/** A run's eval record: ξ's mAP and recall@κ (NaN where the record has none). */
export const readXiRun = (file: string) =>
  readEvalRecord(file).pipe(
    Effect.map((r): XiRun => ({ mAP: r.mAP ?? NaN, recall: r.recallAtK?.value ?? NaN })),
  );

export const main = async (args: string[]) => {
  const { seeds, steps, frozenBackbone, only, reportOnly } = gridFlags();
  const planned: { row: string; file: string; base: Experiment; runs: GridRun[] }[] = [];
  for (const row of ROWS) {
    const file = join(SPECS, `${row}.ts`);
    if (!only.test(`${row}.ts`) || !existsSync(file)) continue;
    const base = withGridFrozen(await Effect.runPromise(loadExperiment(file)), frozenBackbone);
    const runs = Array.from(
      { length: seeds },
      (_, seed) => seedRun(RUNS, file, base, { steps, frozenBackbone }, seed),
    );
    planned.push({ row, file, base, runs });
  }
  if (slurmRequested()) return await submitGrid("xi-sources", args, RUNS, planned.flatMap((p) => p.runs));
  const rows: XiRow[] = [];
  for (const { row, file, base, runs: seedRuns } of planned) {
    const runs: XiRun[] = [];
    for (const run of seedRuns) {
      const record = await Effect.runPromise(finishedRun(run, reportOnly));
      if (record !== undefined && existsSync(record)) runs.push(await Effect.runPromise(readXiRun(record)));
    }
    rows.push({ row, file, e: base, runs });
  }
  const flags = `--seeds ${seeds}${overrideFlags({ steps, frozenBackbone })}${
    reportOnly ? " --report-only" : ""
  }`;
  const body = [
    `Produced by \`npx --yes deno@2.9.6 task grid xi-sources ${flags}\` on ${
      new Date().toISOString().slice(0, 10)
    }.`,
    "",
    ...xiSourcesSection(rows, seeds, steps),
  ];
  await recordSection("RESULTS.md", SECTION, body.join("\n"), 1);
  console.log(body.join("\n"));
};

const cell = (xs: readonly number[]) =>
  xs.length === 0
    ? "not run yet"
    : xs.length === 1
    ? xs[0].toFixed(2)
    : `${mean(xs).toFixed(2)} ± ${std(xs).toFixed(2)}`;

/** The images of a batch: pixel-labelled + each source's, e.g. "4 + 2 + 2". */
const batchText = (e: Experiment) => {
  const { pixel, perSource } = imageLevelShares(e.train.batchSize, imageLevelSources(e.data.imageLevel));
  return [pixel, ...perSource].join(" + ");
};

/** The section's lines after the command: the setting, recall@κ's definition, the table, the findings. */
export const xiSourcesSection = (
  rows: readonly XiRow[],
  seeds: number,
  steps: number | undefined,
): string[] => {
  if (rows.length === 0) return ["No row ran."];
  const e = rows[0].e, t = e.train;
  const maxRuns = Math.max(...rows.map((r) => r.runs.length));
  const lines = [
    `RankSeg's multi-label head ξ (${e.model._tag === "Segmenter" ? e.model.xi?._tag : "?"}, ASL) on a ` +
    `${e.model.backbone._tag} backbone (ImageNet weights), multi-label only: no pixel head, so no image enters a ` +
    `pixel loss. ${
      steps ?? t.steps
    } steps of ${t.optimizer._tag} (lr ${t.optimizer.lr}, backbone ×0.1, poly), crop ` +
    `${e.data.train.cropSize.join("×")}, ${
      seeds === 1 ? "seed 0" : `seeds 0–${seeds - 1}`
    }; evaluated on ccp val (200 images). Every row has ` +
    "4 pixel-labelled ccp train images per batch, whose ξ target is the classes of their cropped masks; the rows " +
    "add image-level photos (`data.imageLevel`), which enter ξ's loss only. A `complete` source's unlisted " +
    "classes are negatives; a `partial` source's are unknown and left out of the loss (`imageLabelsKnown`: " +
    "only the photo's one listed class counts, as a positive).",
    "",
    `mAP: per-class average precision over the 200 val images, averaged over the classes present in them (×100). ` +
    `recall@${KAPPA}: for each val image with at least one ground-truth class, the share of its ground-truth ` +
    `classes (those in its mask) among the ${KAPPA} classes ξ scores highest (ties to the lower class id), ` +
    `averaged over those images (×100); κ = ${KAPPA} is the ccp LarvSeg grid's κ.`,
    "",
    table<XiRow>(
      [
        { header: "source mix", cell: (r) => LABELS[r.row] ?? r.row },
        { header: "spec", align: "left", cell: (r) => `\`${r.file}\`` },
        { header: "batch (pixel + sources)", cell: (r) => batchText(r.e) },
        { header: "mAP", align: "right", cell: (r) => cell(r.runs.map((x) => x.mAP)) },
        { header: `recall@${KAPPA}`, align: "right", cell: (r) => cell(r.runs.map((x) => x.recall)) },
        { header: "seeds", cell: (r) => `${r.runs.length}/${seeds}` },
      ],
      rows,
      "plain",
    ),
    "",
    ...xiFindings(rows),
  ];
  if (maxRuns < 3) {
    lines.push(
      "",
      `${maxRuns === 1 ? "One seed per row" : `${maxRuns} seeds per row`}: ` +
        "a difference between rows is not shown to exceed the run-to-run spread; more seeds " +
        "(`--seeds 3`) would say.",
    );
  }
  return lines;
};

/** Each mix against the pixel-derived labels, in mAP and recall@κ, against the combined seed spread. */
export const xiFindings = (rows: readonly XiRow[]): string[] => {
  const pixel = rows.find((r) => r.row === "pixel" && r.runs.length > 0);
  if (!pixel) return [];
  const out = [
    "Findings (computed from the runs above; spread = the two rows' standard deviations combined):",
    "",
  ];
  for (const r of rows) {
    if (r === pixel || r.runs.length === 0) continue;
    const parts = (["mAP", "recall"] as const).map((k) => {
      const a = pixel.runs.map((x) => x[k]), b = r.runs.map((x) => x[k]);
      const delta = mean(b) - mean(a);
      const spread = Math.hypot(a.length > 1 ? std(a) : 0, b.length > 1 ? std(b) : 0);
      const verdict = a.length < 2 || b.length < 2
        ? "a row with one seed: no verdict"
        : Math.abs(delta) <= spread
        ? "within the seed spread"
        : delta > 0
        ? "beyond the spread"
        : "a loss beyond the spread";
      return `${k === "recall" ? `recall@${KAPPA}` : "mAP"} ${delta >= 0 ? "+" : ""}${delta.toFixed(2)} (±${
        spread.toFixed(2)
      }, ${verdict})`;
    });
    // "Adding …", not the table's "+ …": a list item starting with "+ " would be a nested list.
    const what = (LABELS[r.row] ?? r.row).replace(/^\+ /, "");
    out.push(`- Adding ${what} to the pixel-derived labels: ${parts.join(", ")}.`);
  }
  return out;
};
