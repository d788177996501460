/** The ξ-sources grid: its rows decode with the source mixes they name, and the findings it computes. */
import { Effect } from "effect";
import { assertEquals } from "./assert.ts";
import { loadExperiment } from "../dsl/experiment.ts";
import { imageLevelShares, imageLevelSources } from "../dsl/dataset.ts";
import { KAPPA, rowExperiment, ROWS } from "../experiments/xi-sources/grid.ts";
import { xiFindings, type XiRow } from "../grids/xi_sources.ts";

Deno.test("xi-sources grid: 5 rows, 4 pixel-labelled images per batch in each, the sources and semantics they name", async () => {
  const mixes: Record<string, unknown> = {};
  for (const row of ROWS) {
    const e = await Effect.runPromise(loadExperiment(`experiments/xi-sources/${row}.ts`));
    const sources = imageLevelSources(e.data.imageLevel);
    const shares = imageLevelShares(e.train.batchSize, sources);
    mixes[row] = [
      shares.pixel,
      ...sources.map((s, i) =>
        `${s.labels.split("/").at(-2)}:${shares.perSource[i]}:${s.semantics ?? "complete"}`
      ),
    ];
    assertEquals(e.eval.recallAt, KAPPA);
    assertEquals(e.model._tag === "Segmenter" && e.model.psi, null);
  }
  assertEquals(mixes, {
    pixel: [4],
    "ccp-tags": [4, "image-level:4:complete"],
    clothing: [4, "clothing:4:partial"],
    "clothing-complete": [4, "clothing:4:complete"],
    both: [4, "image-level:2:complete", "clothing:2:partial"],
  });
});

Deno.test("xi-sources findings: each mix against the pixel-derived labels, in mAP and recall@κ, with the seed spread", () => {
  const e = rowExperiment("pixel");
  const row = (name: string, mAP: number[], recall: number[]): XiRow => ({
    row: name,
    file: `${name}.ts`,
    e,
    runs: mAP.map((x, i) => ({ mAP: x, recall: recall[i] })),
  });
  const out = xiFindings([
    row("pixel", [20, 22], [80, 80]),
    row("both", [25, 27], [80, 81]),
    row("clothing", [21], [79]),
  ]);
  // mAP +5.00, spread hypot(√2, √2) = 2.00 → beyond; recall +0.50, spread hypot(0, 0.71) = 0.71 → within.
  assertEquals(out.slice(2), [
    "- Adding ccp tags (complete) + clothing/ (partial) to the pixel-derived labels: mAP +5.00 (±2.00, beyond the " +
    "spread), recall@16 +0.50 (±0.71, within the seed spread).",
    "- Adding clothing/ photos (partial) to the pixel-derived labels: mAP +0.00 (±1.41, a row with one seed: no verdict), " +
    "recall@16 -1.00 (±0.00, a row with one seed: no verdict).",
  ]);
});
