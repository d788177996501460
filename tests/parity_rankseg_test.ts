/**
 * kappa against the official RankSeg code (../shared/reference/rankseg, run in float64 by
 * parity/reference.py): the multi-label losses, GroupWiseLinear, the three ξ heads, the rank
 * LayerNorm and both Segmenter + RankSeg heads in training mode (top-κ, rank targets, loss_img, loss_seg
 * and every gradient), within the tolerances of parity/compare.ts. RESULTS.md's "Parity with the
 * official implementations" has the table (`deno task parity`).
 */
import { runReference } from "../parity/reference_data.ts";
import { ranksegChecks } from "../parity/rankseg.ts";
import { assertParity, parityTest } from "./parity_torch.ts";

await parityTest("parity: RankSeg layers, losses and heads match the official code", async (python) => {
  const rows = await ranksegChecks(await runReference("rankseg", python));
  assertParity(rows, [
    "ASL (γ₋ 2, γ₊ 0",
    "ASL (γ₋ 0, γ₊ 0",
    "BCE",
    "GroupWiseLinear",
    "ξ transformer encoder",
    "ξ Query2Label decoder",
    "ξ global average pool",
    "RA: rank LayerNorm",
    "Segmenter + RankSeg, ξ fused",
    "Segmenter + RankSeg, GAP ξ",
  ]);
});
