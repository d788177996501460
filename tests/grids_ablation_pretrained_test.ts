/**
 * The pretrained grid's part of RESULTS.md: its sections (golden), the learning-curve sentence, and the
 * splice that keeps the from-scratch part byte for byte.
 */
import { assertEquals } from "./assert.ts";
import { goldenIn } from "./golden.ts";
import { datasetSection, findings, GRIDS, replacePart } from "../grids/ablation.ts";
import { learningCurve } from "../grids/grid_runs.ts";
import { rowExperiment } from "../experiments/rankseg-pretrained/grid.ts";
import { join } from "node:path";

const golden = goldenIn(new URL("./fixtures/grids_golden/", import.meta.url));

type Row = Parameters<typeof rowExperiment>[1];
const row = (r: Row, mIoUs: number[], mAP: number | null, kappa?: number) => ({
  dataset: "ccp",
  row: kappa === undefined ? r : `${r}-k${kappa}`,
  file: `experiments/rankseg-pretrained/ccp-${kappa === undefined ? r : `${r}-k${kappa}`}.ts`,
  e: rowExperiment("ccp", r, kappa),
  runs: mIoUs.map((mIoU, i) => ({ mIoU, aAcc: 0.8 + i / 100, mAP })),
});

const rows = [
  row("baseline", [0.301, 0.313, 0.322], null),
  row("mt", [0.305, 0.319], 61.5),
  row("mt-ls", [0.33, 0.34, 0.35], 62),
  row("mt-ls-ra", [0.34, 0.35, 0.36], 63),
  row("gt-eval", [0.44, 0.45, 0.46], 63),
  row("mt-ls-ra", [0.30, 0.31, 0.32], 60, 6),
  row("mt-ls-ra", [0.341, 0.351, 0.361], 64, 24),
];
const trivial = { classId: 0, className: "background", mIoU: 0.013, aAcc: 0.77 };
const curve = [
  { step: 200, mIoU: 20.5, seconds: 300 },
  { step: 400, mIoU: 27.25, seconds: 600 },
  { step: 600, mIoU: 28.0, seconds: 900 },
];

Deno.test("golden: a pretrained grid's section (κ-sweep rows by κ, the learning curve, its own heading and plot)", async () => {
  const section = datasetSection("ccp", rows, trivial, 3, undefined, GRIDS.pretrained, curve);
  assertEquals(section.svg, "results/ablation-pretrained-ccp.svg");
  await golden("ablation_pretrained_ccp.txt", section.lines.join("\n"));
});

Deno.test("findings on a pretrained grid: its mAP range, and no from-scratch paragraph", () => {
  const text = findings(rows, trivial).join("\n");
  assertEquals(text.includes("trained from scratch (no ImageNet"), false);
  assertEquals(text.includes("ξ's multi-label mAP here is 60.0–64.0"), true);
  assertEquals(text.includes("κ sweep: κ=6: 31.00, κ=12: 35.00, κ=24: 35.10; best κ = 24"), true);
});

Deno.test("replacePart: a grid's part is added after the other, then replaced; the other stays byte for byte", () => {
  const scratch = `${GRIDS.scratch.title}\n\nA | B\n\n## camvid\n\nx\n`;
  const one = replacePart(scratch, GRIDS.pretrained, `${GRIDS.pretrained.title}\n\nfirst\n`);
  assertEquals(one, `${scratch}\n${GRIDS.pretrained.title}\n\nfirst\n`);
  const two = replacePart(one, GRIDS.pretrained, `${GRIDS.pretrained.title}\n\nsecond\n`);
  assertEquals(two, `${scratch}\n${GRIDS.pretrained.title}\n\nsecond\n`);
  assertEquals(replacePart(two, GRIDS.scratch, `${GRIDS.scratch.title}\n\nnew\n`).split("\n")[2], "new");
  assertEquals(replacePart("", GRIDS.scratch, scratch), scratch);
});

Deno.test("learningCurve: the eval records of a run's metrics, each with the training time before it", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "metrics.jsonl");
  await Deno.writeTextFile(
    file,
    [
      { kind: "train", step: 100, elapsedSeconds: 50 },
      { kind: "eval", step: 100, mIoU: 12.5 },
      { kind: "train", step: 200, elapsedSeconds: 110 },
      { kind: "eval", step: 200, mIoU: 20 },
    ].map((r) => JSON.stringify(r)).join("\n") + "\n",
  );
  assertEquals(learningCurve(file), [
    { step: 100, mIoU: 12.5, seconds: 50 },
    { step: 200, mIoU: 20, seconds: 110 },
  ]);
  assertEquals(learningCurve(join(dir, "none.jsonl")), []);
  await Deno.remove(dir, { recursive: true });
});
