/**
 * Step budgets from learning curves (grids/plateau.ts) and `grid runs --curve STEPS:EVERY`: the plateau
 * rule on hand curves, the sentence a section states it with, the flag's checks, and a tiny grid whose runs
 * train the steps their curve picked.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "./assert.ts";
import { alongTheCurve, budgetSentence, parseCurveFlag, plateau } from "../grids/plateau.ts";
import { learningCurve } from "../grids/grid_runs.ts";
import { experimentJson } from "../dsl/experiment.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";

const curve = [
  { step: 250, mIoU: 4.1, seconds: 100 },
  { step: 500, mIoU: 7.6, seconds: 200 },
  { step: 750, mIoU: 8.3, seconds: 300 },
  { step: 1000, mIoU: 8.5, seconds: 400 },
];

Deno.test("plateau: the first evaluation within the tolerance of the best", () => {
  assertEquals(plateau(curve)?.step, 500); // 8.5 − 7.6 = 0.9 ≤ 1
  assertEquals(plateau(curve, 0.5)?.step, 750);
  assertEquals(plateau(curve, 0)?.step, 1000);
  assertEquals(plateau(curve, 5)?.step, 250);
  // The best is the highest evaluation, wherever it is: a later dip does not move the plateau.
  assertEquals(plateau([...curve, { step: 1250, mIoU: 6, seconds: 500 }])?.best.step, 1000);
  assertEquals(plateau([]), undefined);
});

Deno.test("plateau: the budget sentence names the curve, the rule and the pick", () => {
  assertEquals(
    budgetSentence("`x.ts`", curve, plateau(curve)!),
    "Step budget 500: the learning curve of `x.ts` (one seed, 1000 steps, 0.40 s per step) reached mIoU 4.10 at " +
      "step 250, 7.60 at step 500, 8.30 at step 750, 8.50 at step 1000; its plateau — the first evaluation " +
      "within 1 mIoU of its best (8.50 at step 1000) — is step 500, so its runs train 500 steps.",
  );
  assert(
    budgetSentence("`x.ts`", curve, plateau(curve, 0)!).endsWith(
      "The plateau is the curve's last evaluation: the curve may still be rising, so a longer curve could pick " +
        "a larger budget.",
    ),
  );
  assertEquals(parseCurveFlag("2000:250"), { steps: 2000, every: 250 });
  assertEquals(parseCurveFlag("2000"), "--curve 2000: expected STEPS:EVERY, e.g. 2000:250");
  assertEquals(parseCurveFlag("100:250"), "--curve 100:250: need 1 ≤ EVERY ≤ STEPS");
});

Deno.test("plateau: the sentence gives the curve's goal figures at the same evaluations", async () => {
  const ranked = curve.map((p, i) => ({ ...p, mAP: 20 + i, novel: 0 }));
  assert(
    budgetSentence("`x.ts`", ranked, plateau(ranked)!).endsWith(
      "so its runs train 500 steps. At the same evaluations: mAP 20.00, 21.00, 22.00, 23.00; novel mIoU 0.00, " +
        "0.00, 0.00, 0.00.",
    ),
  );
  assertEquals(alongTheCurve(curve), "");
  // A panoptic run's metrics: PQ and its parts come along, a figure one evaluation lacks does not.
  const dir = await Deno.makeTempDir();
  const file = join(dir, "metrics.jsonl");
  await Deno.writeTextFile(
    file,
    [
      { kind: "eval", step: 500, mIoU: 1.79, PQ: 0.93, PQ_th: 0.07, PQ_st: 2.13, mAP: 5 },
      { kind: "eval", step: 1000, mIoU: 3.39, PQ: 2.11, PQ_th: 0.45, PQ_st: 4.44 },
    ].map((r) => JSON.stringify(r)).join("\n") + "\n",
  );
  const points = learningCurve(file);
  assertEquals(points[0], {
    step: 500,
    mIoU: 1.79,
    seconds: null,
    PQ: 0.93,
    PQ_th: 0.07,
    PQ_st: 2.13,
    mAP: 5,
  });
  assertEquals(
    alongTheCurve(points),
    " At the same evaluations: PQ 0.93, 2.11; PQ_th 0.07, 0.45; PQ_st 2.13, 4.44.",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("plateau: a multi-label-only curve (no mIoU) is read on ξ's mAP", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "metrics.jsonl");
  await Deno.writeTextFile(
    file,
    [
      { kind: "eval", step: 500, mIoU: null, mAP: 20.5 },
      { kind: "eval", step: 1000, mIoU: null, mAP: 26.0 },
      { kind: "eval", step: 1500, mIoU: null, mAP: 26.8 },
    ].map((r) => JSON.stringify(r)).join("\n") + "\n",
  );
  const points = learningCurve(file);
  const p = plateau(points)!;
  assertEquals([p.metric, p.step, p.best.step], ["mAP", 1000, 1500]);
  assertEquals(
    budgetSentence("`xi.ts`", points, p),
    "Step budget 1000: the learning curve of `xi.ts` (one seed, 1500 steps) reached mAP 20.50 at step 500, " +
      "26.00 at step 1000, 26.80 at step 1500; its plateau — the first evaluation within 1 mAP of its best " +
      "(26.80 at step 1500) — is step 1000, so its runs train 1000 steps.",
  );
  await Deno.remove(dir, { recursive: true });
});

const dec = new TextDecoder();
const grid = async (args: readonly string[]) => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "grids/main.ts", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
};

Deno.test("grid runs --curve: the curve trains first, its plateau is the runs' steps, the report states it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-curve-"));
  const name = `test-curve-${dir.split("-").at(-1)}`;
  const runs = join("runs", `grid-${name}`);
  try {
    const spec = join(dir, "tiny.json");
    await writeFile(spec, experimentJson(tinyExperiment()));
    const report = join(dir, "R.md");
    const bad = await grid(["runs", spec, "--name", name, "--curve", "8:4", "--steps", "4"]);
    assertEquals([bad.code, bad.stderr.trim()], [
      1,
      "grid runs: --curve and --steps: the curve picks the steps; give one of them",
    ]);
    // A tolerance this large makes the first evaluation (step 4) the plateau, whatever the curve's values.
    const args = [
      "runs",
      spec,
      "--name",
      name,
      "--seeds",
      "1",
      "--curve",
      "8:4",
      "--plateau-tolerance",
      "1000",
    ];
    const r = await grid([...args, "--threads", "1", "--workers", "0", "--report", report]);
    assertEquals(r.code, 0, r.stderr);
    const evals = readFileSync(join(runs, "curve-tiny-8x4", "metrics.jsonl"), "utf8").split("\n")
      .filter((l) => l.includes('"kind":"eval"')).map((l) => JSON.parse(l).step);
    assertEquals(evals, [4, 8]);
    const run = join(runs, "tiny-4steps-s0");
    assert(existsSync(join(run, "eval-val.json")), "the seed's run trained the plateau's 4 steps");
    assertEquals(JSON.parse(readFileSync(join(run, "experiment.json"), "utf8")).train.steps, 4);
    // The report is formatted (prose wrapped, table cells padded): compare with whitespace collapsed.
    const text = readFileSync(report, "utf8").replace(/\s+/g, " ");
    assert(text.includes("Step budget 4: the learning curve of"), text);
    assert(text.includes("within 1000 mIoU of its best"), text);
    assert(/\| tiny \| `[^`]+` \| 4 \|/.test(text.replace(/ +\|/g, " |")), text);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(runs, { recursive: true, force: true });
  }
});
