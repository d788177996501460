/**
 * LarvSeg's losses and memory bank on hand-computed cases: the image-level loss, the attentive loss,
 * the bank update (right slot, wrap-around, writes of one batch in image order) and its gradients.
 */
import { Effect } from "effect";
import { assertClose, assertEquals } from "./assert.ts";
import { runGraph } from "./graph_runner.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { execute } from "../runtime/execute.ts";
import { graphStage, plan } from "../ir/plan.ts";
import { value } from "../ir/value.ts";
import { attentiveClassifier, exclusiveCrossEntropy, imageLevelLoss } from "../layers/larvseg.ts";
import { pairClasses, readBank, writeBank } from "../layers/larvseg_bank.ts";
import * as m from "../dsl/model.ts";
import { checkCase } from "../runtime/gradcheck.ts";
import { assert } from "./assert.ts";

const f32 = (data: number[], shape: number[]) => value("float32", Float32Array.from(data), shape);

Deno.test("image-level loss: a 2×2 image, 3 classes, class 2 on two pixels and one ignored pixel", async () => {
  // Mask [[0, 2], [2, 255]]: image-level labels {0, 2} (class 2 counts once, however many pixels it
  // covers). Logits per pixel [z0, z1, z2]; the loss averages them over all four pixels, the ignored
  // one included: mean z = [(2+0+1+1)/4, (0+1+0+3)/4, (1+3+2+2)/4] = [1, 1, 2].
  //   l = 0, class 2 dropped: softmax over {0, 1} of [1, 1] → CE = ln 2
  //   l = 2, class 0 dropped: softmax over {1, 2} of [1, 2] → CE = ln(e + e²) − 2 = ln(1 + e^−1)
  // mean over the two (image, class) pairs: (ln 2 + ln(1 + e^−1)) / 2 = 0.503204434…
  const g = new Graph("t");
  const logits = o.input(g, "logits", [1, 4, 3]);
  const labels = o.input(g, "labels", [1, 3]);
  g.output("loss", imageLevelLoss(logits, labels));
  const out = await runGraph(g, {
    logits: f32([2, 0, 1, 0, 1, 3, 1, 0, 2, 1, 3, 2], [1, 4, 3]),
    labels: f32([1, 0, 1], [1, 3]),
  });
  assertClose(out.loss[0], (Math.log(2) + Math.log(1 + Math.exp(-1))) / 2);
  assertClose(out.loss[0], 0.5032044340390841);
});

Deno.test("exclusive cross-entropy stays finite for extreme logits and when every class is labelled", async () => {
  const g = new Graph("t");
  const logits = o.input(g, "logits", [2, 3]);
  const present = o.input(g, "present", [2, 3]);
  g.output("ce", exclusiveCrossEntropy(logits, present));
  const out = await runGraph(g, {
    logits: f32([1000, -1000, 0, 5, 6, 7], [2, 3]),
    present: f32([1, 0, 0, 1, 1, 1], [2, 3]),
  });
  // Row 0, labels {0}: l = 0 over {0, 1, 2}: ln(e^1000 + e^−1000 + 1) − 1000 ≈ 0; an unlabelled l sees
  // the unlabelled classes {1, 2} only (class 0 dropped): l = 1: ln(e^−1000 + 1) + 1000 = 1000, l = 2: 0.
  // Row 1: every other class dropped, so each class is alone in its softmax: 0.
  assertClose(out.ce, [0, 1000, 0, 0, 0, 0], { atol: 1e-3 });
});

/** The attentive classifier on hand-made inputs: one image, 2 pixels, 3 classes, d = 2, M = Kp = 1. */
const tinyAttentive = (fill: number[]) => {
  const g = new Graph("t");
  const spec = m.attentiveClassifier({ slots: 1, pixels: 1 });
  const inputs = {
    logits: o.input(g, "logits", [1, 2, 3]),
    embeddings: o.input(g, "embeddings", [1, 2, 2]),
    cosine: o.input(g, "cosine", [1, 2, 3]),
    labels: o.input(g, "labels", [1, 3]),
  };
  const a = attentiveClassifier(spec, 3, inputs);
  g.output("loss", a.loss);
  return Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(plan("t", g, [a.stages.read, graphStage(g), a.stages.write]));
    ex.state.set("attentive.bank", f32([1, 0, 0, 1, 0, 0], [3, 1, 1, 2]));
    ex.state.set("attentive.bankPointer", f32([0, 0, 0], [3]));
    ex.state.set("attentive.bankFill", f32(fill, [3]));
    const out = yield* ex.run({
      logits: f32([2, 0, 1, 0, 1, 1], [1, 2, 3]),
      embeddings: f32([1, 0, 0, 1], [1, 2, 2]),
      cosine: f32([1, 0, 0, 0, 1, 0], [1, 2, 3]),
      labels: f32([1, 1, 0], [1, 3]),
    });
    return { loss: Array.from(out.get("loss")!.data as Float32Array) };
  })));
};

Deno.test("attentive loss: S_fg, S_bg, A and the pooled cross-entropy on a tiny case", async () => {
  // Pixels p̂ = [1, 0], [0, 1]; banks: class 0 = [1, 0], class 1 = [0, 1]; labels {0, 1}, class 2 absent.
  // l = 0: S_fg = [1, 0], S_bg = class 1's = [0, 1], S_fg − S_bg = [1, −1] → z-score ±1/√(1 + 1e-5)
  //   → A = [σ(1), σ(−1)] = [a, 1 − a] with a = 0.7310576 (to 1e-5).
  //   mean_p(A·z) with z = [[2, 0, 1], [0, 1, 1]]: [a, (1 − a)/2, 1/2]; class 1 dropped:
  //   CE = ln(e^a + e^½) − a = 0.5842770.
  // l = 1: A = [1 − a, a]; mean_p(A·z) = [1 − a, a/2, 1/2]; class 0 dropped: CE = ln(e^{a/2} + e^½) − a/2
  //   = 0.7626414. Mean over the two pairs: 0.6734592.
  const out = await tinyAttentive([1, 1, 0]);
  assertClose(out.loss[0], 0.6734592178536776, { atol: 1e-6 });
});

Deno.test("attentive loss: a class whose bank is not ready contributes 0 and is no background", async () => {
  // Class 1's bank is empty (fill 0): l = 0 has no ready background class, so S_bg = 1 − S_fg = [0, 1],
  // the same A as above, CE 0.5842770; l = 1 contributes 0; the mean is over both pairs.
  const out = await tinyAttentive([1, 0, 0]);
  assertClose(out.loss[0], 0.5842770419683562 / 2, { atol: 1e-6 });
});

Deno.test("the bank writes each class's top-K pixels to its slot, in image order, and wraps", async () => {
  // 3 images × 4 pixels, 3 classes, d = 2, M = 2 slots, K = 1 pixel. Pixel p of image b has the
  // embedding [10b + p, 1], and the pixel of highest cosine for class c in image b is (b + c) mod 4,
  // so the write of (image b, class c) is [10b + (b + c) mod 4, 1].
  const B = 3, N = 4, C = 3;
  const g = new Graph("t");
  const spec = m.attentiveClassifier({ slots: 2, pixels: 1 });
  const a = attentiveClassifier(spec, C, {
    logits: o.input(g, "logits", [B, N, C]),
    embeddings: o.input(g, "embeddings", [B, N, 2]),
    cosine: o.input(g, "cosine", [B, N, C]),
    labels: o.input(g, "labels", [B, C]),
  });
  g.output("loss", a.loss);
  const embeddings = f32(
    Array.from({ length: B * N }, (_, i) => [10 * Math.floor(i / N) + (i % N), 1]).flat(),
    [
      B,
      N,
      2,
    ],
  );
  const cosine = f32(
    Array.from({ length: B * N * C }, (_, i) => {
      const [b, p, c] = [Math.floor(i / (N * C)), Math.floor(i / C) % N, i % C];
      return p === (b + c) % N ? 1 : 0;
    }),
    [B, N, C],
  );
  const labelsOf = (sets: number[][]) =>
    f32(sets.flatMap((s) => [0, 1, 2].map((c) => (s.includes(c) ? 1 : 0))), [B, C]);
  const steps = [
    [[0, 2], [0], []], // class 0: image 0 → slot 0, image 1 → slot 1; class 2: image 0 → slot 0
    [[], [2], [0]], // class 2: image 1 → slot 1; class 0: image 2 → slot 0 (wrapped)
    [[2], [2], [2]], // class 2 from slot 0: images 0, 1, 2 → slots 0, 1, 0 (image 2 overwrites image 0)
  ];
  const states = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(plan("t", g, [a.stages.read, graphStage(g), a.stages.write]));
    const seen: Record<string, number[]>[] = [];
    for (const labels of steps) {
      yield* ex.run({
        logits: f32(new Array(B * N * C).fill(0), [B, N, C]),
        embeddings,
        cosine,
        labels: labelsOf(labels),
      });
      seen.push(Object.fromEntries([...ex.state].map(([k, v]) => [k, Array.from(v.data as Float32Array)])));
    }
    return seen;
  })));
  const e = (b: number, c: number) => [10 * b + ((b + c) % N), 1];
  const zero = [0, 0];
  // bank [class][slot] flattened; pointer and fill per class.
  assertEquals(states[0]["attentive.bank"], [...e(0, 0), ...e(1, 0), ...zero, ...zero, ...e(0, 2), ...zero]);
  assertEquals(states[0]["attentive.bankPointer"], [0, 0, 1]);
  assertEquals(states[0]["attentive.bankFill"], [2, 0, 1]);
  assertEquals(states[1]["attentive.bank"], [
    ...e(2, 0),
    ...e(1, 0),
    ...zero,
    ...zero,
    ...e(0, 2),
    ...e(1, 2),
  ]);
  assertEquals(states[1]["attentive.bankPointer"], [1, 0, 0]);
  assertEquals(states[1]["attentive.bankFill"], [2, 0, 2]);
  assertEquals(states[2]["attentive.bank"], [
    ...e(2, 0),
    ...e(1, 0),
    ...zero,
    ...zero,
    ...e(2, 2),
    ...e(1, 2),
  ]);
  assertEquals(states[2]["attentive.bankPointer"], [1, 0, 1]);
  assertEquals(states[2]["attentive.bankFill"], [2, 0, 2]);
});

Deno.test("image-level loss: its gradient (composed from primitives) matches central differences", async () => {
  const result = await Effect.runPromise(checkCase({
    name: "imageLevelLoss",
    ops: [],
    dtype: "float64",
    operands: [{ shape: [2, 3, 4] }, { shape: [2, 4], gen: { mask: true } }],
    f: (z, labels) => imageLevelLoss(z, o.cast(labels, "float64")),
  }));
  assert(result.passed, `max error ${result.maxError} > ${result.tolerance}`);
});

Deno.test("the bank read: pairs (labels first, then the lowest unlabelled ids), class means, readiness", () => {
  // 2 images, 4 classes, P = 3; M = 2 slots, Kp = 1, d = 2. Image 0 labels {1, 3}: pairs [1, 3, 0];
  // image 1 labels {0, 1, 2, 3}: the first three, [0, 1, 2]. Class l's slots hold [l, 0] and [l, 2],
  // so c_l = [l, 1]; fill [2, 1, 2, 0]: classes 0 and 2 ready.
  const dims = { batch: 2, pairs: 3, classes: 4, slots: 2, pixels: 1, d: 2 };
  const pairs = pairClasses([0, 1, 0, 1, 1, 1, 1, 1], 2, 4, 3);
  assertEquals(Array.from(pairs, Number), [1, 3, 0, 0, 1, 2]);
  const bank = Float32Array.from([0, 1, 2, 3].flatMap((l) => [l, 0, l, 2]));
  const { centroids, ready } = readBank(bank, Float32Array.from([2, 1, 2, 0]), pairs, dims);
  assertEquals(Array.from(centroids), [1, 1, 3, 1, 0, 1, 0, 1, 1, 1, 2, 1]);
  assertEquals(Array.from(ready), [0, 0, 1, 1, 0, 1]);
  // Writing image 1's rows [10 + j, 20 + j] for its pairs j = 0, 1, 2 (image 0 writes only its labels):
  // class 1 gets image 0's row at slot 1 (its pointer), then image 1's at slot 0 (wrapped).
  const state = { bank, pointer: Float32Array.from([0, 1, 1, 0]), fill: Float32Array.from([2, 1, 2, 0]) };
  const rows = Float32Array.from([0, 1, 2, 3, 4, 5].flatMap((i) => [10 * Math.floor(i / 3) + i, 20 + i]));
  writeBank(state, rows, pairs, [0, 1, 0, 1, 1, 1, 1, 1], dims);
  assertEquals(Array.from(state.bank), [13, 23, 0, 2, 14, 24, 0, 20, 2, 0, 15, 25, 1, 21, 3, 2]);
  assertEquals(Array.from(state.pointer), [1, 1, 0, 1]);
  assertEquals(Array.from(state.fill), [2, 2, 2, 1]);
});
