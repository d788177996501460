/**
 * Golden outputs of the experiment grids' renderers: fixed synthetic run results in, the exact Markdown and
 * SVG of RESULTS.md's RankSeg ablation part out, compared byte for byte with tests/fixtures/grids_golden/
 * (the pretrained grid's: tests/grids_ablation_pretrained_test.ts). The fixtures are .txt so that
 * `deno fmt` leaves them as the renderers wrote them.
 *
 * After an intended change of the output: `UPDATE_GOLDEN=1 deno test -A tests/grids_golden_test.ts`,
 * then read the fixtures' diff.
 */
import { goldenIn } from "./golden.ts";
import { datasetSection, findings, resultsHeader, type RowResult } from "../grids/ablation.ts";
import { barChart } from "../grids/bar_chart.ts";
import { rowExperiment } from "../experiments/rankseg/grid.ts";

const golden = goldenIn(new URL("./fixtures/grids_golden/", import.meta.url));

type Row = Parameters<typeof rowExperiment>[1];
const ablationRow = (
  dataset: "camvid" | "coco133",
  row: Row,
  mIoUs: number[],
  mAP: number | null,
  kappa?: number,
) => ({
  dataset,
  row: kappa === undefined ? row : `${row}-k${kappa}`,
  file: `experiments/rankseg/${dataset}-${kappa === undefined ? row : `${row}-k${kappa}`}.ts`,
  e: rowExperiment(dataset, row, kappa),
  runs: mIoUs.map((mIoU, i) => ({ mIoU, aAcc: 0.6 + mIoU + i / 100, mAP })),
});

const camvidRows = [
  ablationRow("camvid", "baseline", [0.201, 0.213, 0.222], null),
  ablationRow("camvid", "mt", [0.205, 0.219], 100),
  ablationRow("camvid", "mt-ls", [0.17, 0.18, 0.19], 100),
  ablationRow("camvid", "mt-ls-ra", [0.24, 0.25, 0.26], 100),
  ablationRow("camvid", "gt-eval", [0.24, 0.25, 0.26], 100),
  ablationRow("camvid", "gt-train-eval", [0.40, 0.41, 0.42], 100),
  ablationRow("camvid", "baseline-linear", [0.30, 0.31, 0.32], null),
  ablationRow("camvid", "mt-ls-ra-linear", [], null),
];
const cocoRows = [
  ablationRow("coco133", "mt-ls-ra", [0.101, 0.112, 0.123], 41.7),
  ablationRow("coco133", "mt-ls-ra", [0.05, 0.06, 0.07], 38.2, 10),
  ablationRow("coco133", "mt-ls-ra", [0.105, 0.115, 0.125], 40.9, 50),
];
const trivial = (mIoU: number) => ({ classId: 3, className: "road", mIoU, aAcc: 0.31 });

Deno.test("golden: the RESULTS.md header, an incomplete grid", () =>
  golden(
    "ablation_header.txt",
    resultsHeader([...camvidRows, ...cocoRows], 3, 400, true, "2026-11-01").join("\n"),
  ));

Deno.test("golden: RESULTS.md sections and plots per dataset", async () => {
  for (
    const [name, rows, steps] of [["camvid", camvidRows, undefined], ["coco133", cocoRows, 200]] as const
  ) {
    const section = datasetSection(name, rows, trivial(0.025), 3, steps);
    await golden(`ablation_${name}.txt`, `${section.svg}\n\n${section.lines.join("\n")}`);
    await golden(`ablation_${name}.svg.txt`, section.chart);
  }
});

Deno.test("golden: ablation findings", () =>
  golden(
    "ablation_findings.txt",
    findings(camvidRows.filter((r) => r.runs.length > 0) as RowResult[], trivial(0.025)).join("\n"),
  ));

Deno.test("golden: barChart without a reference line", () =>
  golden(
    "bar_chart.svg.txt",
    barChart("a & b <plot>", [{ label: "x<y", mean: 0.7, std: 0.05 }, { label: "z", mean: 0.2, std: 0.3 }]),
  ));
