/** The panoptic grid's RESULTS.md words: findings against the seed spread and the likely causes. */
import { assertEquals } from "./assert.ts";
import {
  panopticFindings,
  panopticLikelyCauses,
  type PanopticRowResult,
} from "../grids/panoptic_findings.ts";

const row = (name: string, pqs: number[], inference = 15, pqSt?: number[]): PanopticRowResult => ({
  row: name,
  runs: pqs.map((pq, i) => ({ pq, pqTh: pq / 10, pqSt: pqSt?.[i] ?? pq * 2, mIoU: 0 })),
  inference,
});

Deno.test("panoptic findings: deltas against twice the larger seed std, labels bold (no nested lists)", () => {
  // baseline 0.30 ± 0.02 (sample std), + ReMask 0.36 ± 0.02: +6.00 PQ, 2σ = 4.00 → better;
  // + ReClass 0.31 ± 0.05: +1.00, 2σ = 10.00 → within.
  const out = panopticFindings(
    [
      row("baseline", [0.0028, 0.0030, 0.0032]),
      row("remask", [0.0034, 0.0036, 0.0038], 16),
      row("reclass", [0.0026, 0.0031, 0.0036]),
    ].map((r) => ({ ...r, runs: r.runs.map((x) => ({ ...x, pq: x.pq * 100 })) })),
    0.06 / 100,
  );
  assertEquals(out, [
    "- **baseline vs trivial**: 30.00 vs 0.06 PQ (clearly above)",
    "- **+ ReMask**: +6.00 PQ (2σ = 4.00): better; inference 16.0 ms vs 15.0 ms",
    "- **+ ReClass**: +1.00 PQ (2σ = 10.00): within the seed spread; inference 15.0 ms vs 15.0 ms",
    "- **inference**: kMaX-style baseline, + ReMask, + ReClass run one and the same inference graph " +
    "(tests/panoptic_model_test.ts compares the printed graphs); their measured times differ by up to 7 %, " +
    "which is measurement noise.",
  ]);
  assertEquals(panopticFindings([row("remask", [0.1])], 0), ["- no baseline runs yet"]);
});

Deno.test("panoptic likely causes: stated only when their numbers are there", () => {
  const rows = [
    row("baseline", [0.0030, 0.0032, 0.0025], 15, [0.0075, 0.0073, 0.0048]),
    row("remask", [0.0030, 0.0031, 0.0027]),
    row("reclass", [0.0032, 0.0001, 0.0017], 15, [0.0072, 0, 0.0036]),
  ];
  const diagnostics = {
    baseline: new Map([["matchedClassProb", 0.0756], ["confidentShare", 0]]),
    remask: new Map([["matchedClassProb", 0.08], ["matchedReMaskGate", 0.012]]),
  };
  const out = panopticLikelyCauses(rows, diagnostics, { steps: 450, batch: 4 });
  assertEquals(out.length, 3);
  // Things: PQ_th is a tenth of PQ here, PQ_st twice: mean PQ_th 0.03 vs PQ_st 0.65.
  assertEquals(
    out[0].startsWith("- **Things are nearly missed** (baseline PQ_th 0.03 vs PQ_st 0.65)."),
    true,
  );
  assertEquals(
    out[0].includes("a probability of 0.076 on average, and 0.0 % of all queries reach a confidence of 0.5"),
    true,
  );
  assertEquals(out[1].includes("averages 0.012 over the matched queries' own pixels"), true);
  assertEquals(out[1].includes("ground-truth class gets 0.080"), true);
  assertEquals(out[1].endsWith("by about 1.2 %, consistent with a result within the seed spread."), true);
  // ReClass: std 0.16 vs the baseline's 0.04 → unstable; its lowest seed is seed 1.
  assertEquals(
    out[2],
    "- **+ ReClass is unstable across seeds**: std 0.16 vs the baseline's 0.04; seed 1 scored 0.01 PQ " +
      "(PQ_st 0.00), so its mean says less than the baseline's.",
  );
  // Without diagnostics, nothing is claimed about the class head or the gate.
  assertEquals(panopticLikelyCauses(rows, {}, { steps: 450, batch: 4 }).length, 1);
});
