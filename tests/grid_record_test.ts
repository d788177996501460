/**
 * The generic grid's reading of eval records (grids/run_record.ts) and its table (reportBody): the headline
 * of a panoptic run with PQ over things and stuff, of a LarvSeg run with base and novel mIoU, of a record
 * in fractions (written before `units`), and the table's class-group column from them.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "./assert.ts";
import { headline } from "../grids/run_record.ts";
import { type ExperimentRow, reportBody } from "../grids/experiments_grid.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";

const close = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) < 1e-9);

Deno.test("grid records: PQ with things / stuff, mIoU with base / novel, fractions read as percent", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-grid-record-"));
  try {
    const write = async (name: string, r: unknown) => {
      await writeFile(join(dir, name), JSON.stringify(r));
      return join(dir, name);
    };
    const pan = headline(
      await write("pan.json", { pq: { all: { pq: 0.031 }, things: { pq: 0.012 }, stuff: { pq: 0.06 } } }),
    );
    assertEquals(pan.metric, "PQ");
    assertEquals(pan.split?.names, ["PQ_th", "PQ_st"]);
    assert(close(pan.split!.values, [1.2, 6]), JSON.stringify(pan));
    const larv = headline(
      await write("larv.json", { units: "percent", mIoU: 4.5, mAP: 30, mIoUBase: 6, mIoUNovel: 0.25 }),
    );
    assertEquals([larv.metric, larv.value, larv.mAP, larv.split?.names], ["mIoU", 4.5, 30, [
      "base",
      "novel",
    ]]);
    assert(close(larv.split!.values, [6, 0.25]));
    // A multi-label-only model: no mIoU (null), its headline is ξ's mAP.
    const xi = headline(await write("xi.json", { units: "percent", mIoU: null, mAP: 24.5 }));
    assertEquals([xi.metric, xi.value, xi.mAP, xi.split], ["mAP", 24.5, 24.5, undefined]);
    // Fractions (no `units`): every mIoU figure ×100.
    const old = headline(await write("old.json", { mIoU: 0.045, mIoUBase: 0.06, mIoUNovel: 0.0025 }));
    assert(close([old.value, ...old.split!.values], [4.5, 6, 0.25]), JSON.stringify(old));
    // A plain semantic record has no class groups.
    assertEquals(headline(await write("plain.json", { units: "percent", mIoU: 7 })).split, undefined);

    const e = tinyExperiment();
    const rows: ExperimentRow[] = [
      { file: "a.ts", e, runs: [larv, { ...larv, split: { names: ["base", "novel"], values: [8, 0.75] } }] },
      { file: "b.ts", e, runs: [{ metric: "mIoU", value: 3 }] },
    ];
    const text = reportBody(rows, 2, 10, "grid runs a.ts b.ts", "2026-12-08").join("\n");
    const line = (file: string) => text.split("\n").find((l) => l.includes(`\`${file}\``)) ?? "";
    assert(text.includes("by class group (mean ± std)"), text);
    // base 6 and 8: 7.00 ± 1.41 (sample std); novel 0.25 and 0.75: 0.50 ± 0.35.
    assert(line("a.ts").includes("base 7.00 ± 1.41, novel 0.50 ± 0.35"), line("a.ts"));
    assert(/\|\s+—\s+\|$/.test(line("b.ts")), line("b.ts"));
    // Without any class groups the column is left out.
    const plain = reportBody([rows[1]], 1, 10, "grid runs b.ts", "2026-12-08").join("\n");
    assert(!plain.includes("by class group"), plain);
  } finally {
    await rm(dir, { recursive: true });
  }
});
