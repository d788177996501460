/** The parity section of RESULTS.md: how the checks compare, the table of every check, the deviations. */
import { type Column, table } from "../figures/markdown.ts";
import { type Check, TOLERANCE } from "./compare.ts";
import { DEVIATIONS } from "./differences.ts";
import type { ParityRun } from "./run.ts";

export const SECTION = "Parity with the official implementations";

const sci = (x: number) => (x === 0 ? "0" : Number.isFinite(x) ? x.toExponential(1) : "∞");

const COLUMNS: readonly Column<Check>[] = [
  { header: "method", cell: (r) => r.method },
  { header: "component", align: "left", cell: (r) => r.component },
  { header: "compared", align: "left", cell: (r) => r.compared },
  {
    header: "max abs diff",
    cell: (r) => (r.kind === "exact" ? (r.maxAbs === 0 ? "equal" : `${r.maxAbs} differ`) : sci(r.maxAbs)),
  },
  { header: "max rel diff", cell: (r) => (r.kind === "exact" ? "–" : sci(r.maxRel)) },
  { header: "tolerance", cell: (r) => (r.kind === "exact" ? "exact" : sci(r.tolerance)) },
  { header: "PyTorch f32 vs f64", cell: (r) => (r.torchFloat32 === undefined ? "–" : sci(r.torchFloat32)) },
  { header: "result", cell: (r) => (r.passed ? "pass" : "**FAIL**") },
];

/** The section's body (without its heading). */
export const parityReport = (run: ParityRun, context: { cpu: string; date: string }): string => {
  const passed = run.rows.filter((r) => r.passed).length;
  return [
    `\`npx --yes deno@2.9.6 task parity\` on ${context.cpu}, ${context.date}: ${passed} of ` +
    `${run.rows.length} checks pass. The official code runs from \`../shared/reference\` (imported through its ` +
    `shims, never copied) under PyTorch ${run.torch}, in ${run.referenceSeconds.toFixed(1)} s (two ` +
    `processes at once); kappa's side, ONNX Runtime on one thread, took ${run.kappaSeconds.toFixed(1)} s. ` +
    `The same checks run in CI as tests/parity_*_test.ts.`,
    "",
    "**What is compared.** `parity/reference.py` builds each official module (RankSeg: " +
    "openseg-group/RankSeg at dc6a08e; kMaX-DeepLab: bytedance/kmax-deeplab at f8e1d04), moves every parameter " +
    "off its initial value, and records its parameters, inputs, outputs, losses and gradients (of the loss, or " +
    "of L = Σ w ⊙ output with a fixed random w for a module without one). kappa maps those parameters onto its " +
    "own by a name table per module (`parity/rankseg.ts`: strict, every kappa variable and every " +
    "official tensor accounted for), builds the same piece from its layers, differentiates it with its own " +
    "autodiff and runs it on ONNX Runtime. LarvSeg's repository has no licence, so its rows are hand-computed " +
    "cases: the equations of `../shared/reference/larvseg/README.md` evaluated in float64 by plain loops.",
    "",
    `**Tolerances.** kappa computes in float32 (ONNX Runtime has no float64 Erf or Gelu kernels). RankSeg's ` +
    `reference runs in float64, so its values are exact to ~1e-15 and the difference is kappa's float32 ` +
    `rounding; PyTorch's own float32 run from the same weights is shown beside it (its noise floor). kMaX runs ` +
    `in float32 (it casts to float32 inside its autocast blocks). max rel diff = max |kappa − official| / ` +
    `max |official| per tensor (relative to the tensor's magnitude; the worst tensor of a group), except for ` +
    `tensors that are 0 in exact arithmetic (an attention key bias's gradient, the z-score shift β's), which ` +
    `are measured against their row's largest value. Tolerances: ${sci(TOLERANCE.values)} for values and ` +
    `losses, ${
      sci(TOLERANCE.gradients)
    } for gradients, about ten times the largest difference PyTorch's own ` +
    `float32 run shows here (2.3e-6 and 3.5e-6, both through the rank LayerNorm over κ = 5 close cosines); ` +
    `selections, targets, assignments and panoptic maps must be equal. A check beyond ` +
    `its tolerance fails the test and makes this bench exit non-zero, naming the component.`,
    "",
    table(COLUMNS, run.rows, "plain"),
    "",
    "## Deliberate differences",
    "",
    ...DEVIATIONS.map((d) =>
      `- **${d.method}: ${d.what}.** Official: ${d.official}. kappa: ${d.kappa}. Why: ${d.why}.`
    ),
  ].join("\n");
};
