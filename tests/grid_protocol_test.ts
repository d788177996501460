/**
 * A grid trained under the frozen-backbone protocol writes a RESULTS.md part of its own (title, plots,
 * heading anchors), so the fine-tuning part of the same grid stays beside it as the control.
 */
import { assertEquals } from "./assert.ts";
import { protocolTitle } from "../grids/grid_runs.ts";
import { frozenGrid, GRIDS, replacePart } from "../grids/ablation.ts";

Deno.test("frozen protocol: its own part title, plots and anchors; fine-tuning unchanged", () => {
  assertEquals(protocolTitle("# LarvSeg", undefined), "# LarvSeg");
  assertEquals(protocolTitle("# LarvSeg", 8), "# LarvSeg — frozen backbone (8 cached draws)");
  assertEquals(protocolTitle("# LarvSeg", 0), "# LarvSeg — frozen backbone (no cache)");
  assertEquals(frozenGrid(GRIDS.pretrained, undefined), GRIDS.pretrained);
  const frozen = frozenGrid(GRIDS.pretrained, 8);
  assertEquals(frozen.svgPrefix, "ablation-pretrained-frozen");
  assertEquals(frozen.headingSuffix, ", pretrained MobileNetV2, frozen backbone");
  // Writing the frozen part keeps the fine-tuning part byte for byte.
  const fineTuning = `${GRIDS.pretrained.title}\n\nfine-tuning tables\n`;
  const doc = replacePart(fineTuning, frozen, `${frozen.title}\n\nfrozen tables\n`);
  assertEquals(doc.startsWith(fineTuning), true);
  assertEquals(doc.endsWith(`${frozen.title}\n\nfrozen tables\n`), true);
});
