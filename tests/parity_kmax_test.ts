/**
 * kappa against the official kMaX-DeepLab code (../shared/reference/kmax, run in float32 by
 * parity/reference.py): the k-means step, the void prior, Hungarian matching, the PQ-style,
 * mask-ID and auxiliary semantic losses with their gradients, and panoptic merging. RESULTS.md's
 * "Parity with the official implementations" has the table (`deno task parity`).
 */
import { runReference } from "../parity/reference_data.ts";
import { kmaxChecks } from "../parity/kmax.ts";
import { assertParity, parityTest } from "./parity_torch.ts";

await parityTest(
  "parity: kMaX-DeepLab matching, losses and merging match the official code",
  async (python) => {
    const rows = await kmaxChecks(await runReference("kmax", python));
    assertParity(rows, [
      "k-means cross-attention",
      "class head: void prior",
      "Hungarian matching",
      "PQ-style loss, class term",
      "PQ-style loss, dice term",
      "mask-ID cross-entropy",
      "auxiliary semantic cross-entropy",
      "panoptic merge",
    ]);
  },
);
