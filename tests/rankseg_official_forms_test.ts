/**
 * The two spec options that let kappa express the official RankSeg code's forms (checked against it in
 * tests/parity_rankseg_test.ts): the pixel cross-entropy averaged over all pixels (mmseg's reduction),
 * and the GAP ξ with the official head's hidden 1×1 conv + ReLU. Hand cases, the interpreter's wiring,
 * and the JSON of specs without them (unchanged, so their hashes are too).
 */
import { assert, assertClose, assertEquals } from "./assert.ts";
import { runGraph } from "./graph_runner.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import * as m from "../dsl/model.ts";
import { canonicalJson } from "../dsl/canonical.ts";
import { softmaxCrossEntropy } from "../layers/losses.ts";
import { multiLabelHead } from "../layers/xi.ts";
import { lossGraph } from "../interpret/graphs.ts";
import { value } from "../ir/value.ts";
import { random } from "../core/random.ts";

const f32 = (data: number[], shape: number[]) => value("float32", Float32Array.from(data), shape);

Deno.test("pixel cross-entropy: 'allPixels' divides by every pixel, ignored ones included (mmseg)", async () => {
  // 4 pixels, 2 classes, channel-last logits; labels [0, 255, 1, 255]: two labelled pixels.
  //   pixel 0: logits [2, 0], label 0 → ln(1 + e^−2) = 0.126928; pixel 2: [0, 1], label 1 → ln(1 + e^−1) = 0.313262
  //   labelled pixels: (0.126928 + 0.313262) / 2 = 0.220095; all pixels: the same sum / 4 = 0.110048
  const g = new Graph("t");
  const logits = o.input(g, "logits", [1, 4, 2]);
  const labels = o.input(g, "labels", [1, 4], "int64");
  g.output("labelled", softmaxCrossEntropy(logits, labels, { axis: -1 }));
  g.output("all", softmaxCrossEntropy(logits, labels, { axis: -1, reduction: "allPixels" }));
  const out = await runGraph(g, {
    logits: f32([2, 0, 5, 5, 0, 1, -3, 3], [1, 4, 2]),
    labels: value("int64", BigInt64Array.from([0n, 255n, 1n, 255n]), [1, 4]),
  });
  const sum = Math.log(1 + Math.exp(-2)) + Math.log(1 + Math.exp(-1));
  assertClose(out.labelled[0], sum / 2);
  assertClose(out.all[0], sum / 4);
  assertClose(out.all[0], 0.1100476, { atol: 1e-6 });
});

Deno.test("pixelLossReduction: the training graph's loss.pixel is the labelled-pixel loss × the labelled share", async () => {
  const S = 16, B = 2, K = 5;
  const spec = m.segmenter({
    classes: K,
    backbone: m.vit({ dim: 16, depth: 1, heads: 2, patchSize: 8 }),
    headDim: 16,
    xi: null,
    select: m.all(),
    temperature: m.shared(),
  });
  const shapes = { batch: B, height: S, width: S, trainSize: [S, S] as const };
  const rng = random(3);
  const images = f32(Array.from({ length: B * 3 * S * S }, () => rng.normal()), [B, 3, S, S]);
  // 5 of every 16 columns ignored: 31.25 % of the pixels.
  const labels = value(
    "int32",
    Int32Array.from({ length: B * S * S }, (_, i) => (i % S < 5 ? 255 : (i >> 4) % K)),
    [B, S, S],
  );
  const loss = async (s: m.Segmenter) =>
    (await runGraph(lossGraph(s, shapes).graph, { images, labels }, { seed: 4, outputs: ["loss.pixel"] }))[
      "loss.pixel"
    ][0];
  const labelled = await loss(spec);
  const all = await loss({ ...spec, pixelLossReduction: "allPixels" });
  assertClose(all, labelled * (11 / 16), { rtol: 1e-5 });
  assertEquals(await loss({ ...spec, pixelLossReduction: "labelledPixels" }), labelled);
});

Deno.test("gapLinear({ hidden: true }): scores = W₂·relu(W₁·mean_p(P) + b₁) + b₂, the official GAP head", async () => {
  // Two pixel tokens [1, -3] and [3, 1] (d = 2): mean [2, -1]; W₁ = [[1, 2], [-1, 1]] ([in, out]),
  // b₁ = [0.5, 0]: [2·1 − 1·(−1) + 0.5, 2·2 + (−1)·1 + 0] = [3.5, 3]; relu keeps both.
  // Classifier over K = 3: W₂ = [[1, 0, -1], [0, 2, 1]], b₂ = [0, 0, 1]: [3.5, 6, −3.5 + 3 + 1] = [3.5, 6, 0.5].
  // With W₁'s second column negated the second hidden unit is −3 → relu 0: scores [3.5, 0, −2.5].
  const g = new Graph("t");
  const pixels = o.input(g, "pixels", [1, 2, 2]);
  g.output("scores", multiLabelHead(m.gapLinear({ hidden: true }), pixels, [1, 2], 3, false).scores);
  const run = (w1: number[]) =>
    runGraph(g, { pixels: f32([1, -3, 3, 1], [1, 2, 2]) }, {
      state: {
        "xi.hidden.weight": f32(w1, [2, 2]),
        "xi.hidden.bias": f32([0.5, 0], [2]),
        "xi.fc.weight": f32([1, 0, -1, 0, 2, 1], [2, 3]),
        "xi.fc.bias": f32([0, 0, 1], [3]),
      },
    });
  assertClose((await run([1, 2, -1, 1])).scores, [3.5, 6, 0.5]);
  assertClose((await run([1, -2, -1, -1])).scores, [3.5, 0, -2.5]);
});

Deno.test("specs without the options keep their JSON (and so their hash)", () => {
  assertEquals(m.gapLinear(), { _tag: "GapLinear" });
  assertEquals(m.gapLinear({ hidden: false }), { _tag: "GapLinear" });
  const s = m.segmenter({ classes: 7, backbone: m.convNet() });
  assert(!canonicalJson(s).includes("pixelLossReduction") && !canonicalJson(s).includes("hidden"));
});
