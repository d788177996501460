/**
 * LarvSeg's classifier, image-level loss and attentive classifier with its bank write against the
 * equations of ../shared/reference/larvseg/README.md evaluated by hand in float64 (the official code has
 * no licence: nothing of it is run). Needs no Python. More hand cases: tests/larvseg_layers_test.ts.
 */
import { larvsegChecks } from "../parity/larvseg.ts";
import { assertParity } from "./parity_torch.ts";

Deno.test("parity: LarvSeg's classifier, image-level loss and attentive classifier match the equations", async () => {
  assertParity(await larvsegChecks(), [
    "LarvSeg classifier",
    "image-level loss",
    "category-wise attentive classifier",
  ]);
});
