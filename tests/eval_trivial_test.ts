import { assertClose } from "./assert.ts";
import { majorityAAcc, majorityMiou } from "../eval/trivial.ts";

Deno.test("trivial predictor: IoU of the predicted class is its pixel share, averaged over present classes", () => {
  // 100 labeled pixels; predicting class 0 everywhere: IoU₀ = 50/100, IoU₁ = IoU₃ = 0, class 2 absent (skipped).
  assertClose(majorityMiou([50, 30, 0, 20], 0), 0.5 / 3);
  // Predicting a class absent from the test split still counts it (its union is every pixel).
  assertClose(majorityMiou([50, 30, 0, 20], 2), 0);
  // Pixel accuracy is the predicted class's share of the labeled pixels.
  assertClose(majorityAAcc([50, 30, 0, 20], 0), 0.5);
  assertClose(majorityAAcc([50, 30, 0, 20], 3), 0.2);
});
