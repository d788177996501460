/** What the selection and temperature variants mean, checked on concrete outputs. */
import { assert, assertClose, assertEquals } from "./assert.ts";
import { runGraph } from "./graph_runner.ts";
import * as m from "../dsl/model.ts";
import { inferenceGraph } from "../interpret/graphs.ts";
import { canonicalJson, specHash } from "../dsl/canonical.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { gatherClasses, rankTargets } from "../layers/selection.ts";
import { value } from "../ir/value.ts";
import { random } from "../core/random.ts";

const K = 7, B = 4, S = 32;
const shapes = { batch: B, height: S, width: S, trainSize: [S, S] as const };
const base = (o: Partial<m.Segmenter>) =>
  m.segmenter({
    classes: K,
    backbone: m.vit({ dim: 16, depth: 1, heads: 2, patchSize: 8 }),
    headDim: 16,
    ...o,
  });

const rng = random(9);
const images = value("float32", Float32Array.from({ length: B * 3 * S * S }, () => rng.normal()), [
  B,
  3,
  S,
  S,
]);
/** Image b holds classes {b, b+2} (mod K) and some ignored pixels. */
const labelData = new Int32Array(B * S * S).map((_, i) => {
  const [b, x] = [Math.floor(i / (S * S)), i % S];
  return x < 2 ? 255 : (b + (x < 16 ? 0 : 2)) % K;
});
const labels = value("int32", labelData, [B, S, S]);

const infer = (spec: m.Segmenter, feeds: Record<string, ReturnType<typeof value>> = { images }) =>
  runGraph(inferenceGraph(spec, shapes), feeds, { seed: 5 });

Deno.test("rankAdaptive with every τ_r equal gives the logits of a shared τ", async () => {
  const a = await infer(base({ select: m.topK(4), temperature: m.shared(0.3) }));
  const b = await infer(base({ select: m.topK(4), temperature: m.rankAdaptive(0.3) }));
  assertEquals(a.selected, b.selected);
  assertClose(b.logits, a.logits, { atol: 1e-5 });
});

Deno.test("topK(K) keeps every class, sorted by score, and changes nothing else", async () => {
  const ranked = await infer(base({ select: m.topK(K), temperature: m.shared() }));
  const complete = await infer(base({ select: m.all(), temperature: m.shared() }));
  for (let b = 0; b < B; b++) {
    const scores = ranked.scores.slice(b * K, (b + 1) * K);
    const selected = ranked.selected.slice(b * K, (b + 1) * K);
    assertEquals([...selected].sort(), [0, 1, 2, 3, 4, 5, 6]);
    for (let r = 1; r < K; r++) {
      assert(scores[selected[r - 1]] >= scores[selected[r]], `image ${b} not sorted`);
    }
  }
  // Attention is permutation-equivariant over class tokens, so scattered back the logits agree.
  assertClose(ranked.logits, complete.logits, { atol: 1e-4 });
  assertEquals(ranked.classes, complete.classes);
});

Deno.test("batched top-κ matches a pure-TypeScript argsort for every image (batch 4)", async () => {
  const out = await infer(base({ select: m.topK(3) }));
  for (let b = 0; b < B; b++) {
    const scores = out.scores.slice(b * K, (b + 1) * K);
    const expected = scores.map((s, c) => [s, c]).sort((x, y) => y[0] - x[0]).slice(0, 3).map(([, c]) => c);
    assertEquals(out.selected.slice(b * 3, b * 3 + 3), expected, `image ${b}`);
  }
  // Not-selected classes are scattered back as −100; every pixel's class is one of the image's selection.
  for (let b = 0; b < B; b++) {
    const chosen = new Set(out.selected.slice(b * 3, b * 3 + 3));
    for (let c = 0; c < K; c++) {
      const channel = out.logits.slice((b * K + c) * 16, (b * K + c + 1) * 16);
      assert(
        chosen.has(c) ? channel.some((v) => v !== -100) : channel.every((v) => v === -100),
        `image ${b} class ${c}`,
      );
    }
    assert(out.classes.slice(b * S * S, (b + 1) * S * S).every((c) => chosen.has(c)));
  }
});

Deno.test("the class-feature gather is per image (the official gather is only right for batch 1)", async () => {
  const g = new Graph("gather");
  const feats = o.input(g, "feats", [3, 4, 2]);
  const idx = o.input(g, "idx", [3, 2], "int64");
  g.output("rows", gatherClasses(feats, idx));
  const f = Array.from({ length: 24 }, (_, i) => i);
  const r = await runGraph(g, {
    feats: value("float32", Float32Array.from(f), [3, 4, 2]),
    idx: value("int64", BigInt64Array.from([3n, 0n, 1n, 2n, 0n, 3n]), [3, 2]),
  });
  // image b, class c → row (b·4 + c)
  assertEquals(r.rows, [6, 7, 0, 1, 10, 11, 12, 13, 16, 17, 22, 23]);
});

Deno.test("rank targets: a pixel of the class ranked r gets r; unselected and ignored pixels get 255", async () => {
  const g = new Graph("targets");
  const lab = o.input(g, "labels", [2, 1, 4], "int64");
  const idx = o.input(g, "idx", [2, 2], "int64");
  g.output("t", rankTargets(lab, idx, 5, 255));
  const r = await runGraph(g, {
    labels: value("int64", BigInt64Array.from([0n, 3n, 4n, 255n, 1n, 1n, 2n, 0n]), [2, 1, 4]),
    idx: value("int64", BigInt64Array.from([3n, 0n, 2n, 1n]), [2, 2]),
  });
  assertEquals(r.t, [1, 0, 255, 255, 1, 1, 0, 255]);
});

Deno.test("the ground-truth oracle selects exactly the classes present", async () => {
  for (const xi of [m.transformerEncoder({ pool: 2 }), null]) {
    const spec = base({
      xi,
      multiLabelLoss: xi ? m.asymmetricLoss() : null,
      select: m.groundTruth({ k: 4 }),
    });
    const out = await infer(spec, { images, labels });
    for (let b = 0; b < B; b++) {
      const present = new Set([b % K, (b + 2) % K]);
      assertEquals(new Set(out.selected.slice(b * 4, b * 4 + 2)), present, `image ${b}`);
      for (let c = 0; c < K; c++) {
        const channel = out.logits.slice((b * K + c) * 16, (b * K + c + 1) * 16);
        assert(
          present.has(c) ? channel.some((v) => v !== -100) : channel.every((v) => v === -100),
          `class ${c}`,
        );
      }
      assert(out.classes.slice(b * S * S, (b + 1) * S * S).every((c) => present.has(c)));
    }
  }
});

Deno.test("specs: JSON round-trip keeps the hash; key order does not matter", () => {
  const spec = base({ select: m.topK(5), temperature: m.rankLayerNorm() });
  const again = JSON.parse(JSON.stringify(spec));
  assertEquals(specHash(again), specHash(spec));
  const reordered = Object.fromEntries(Object.entries(spec).reverse());
  assertEquals(canonicalJson(reordered), canonicalJson(spec));
  assertEquals(specHash(reordered), specHash(spec));
  assert(specHash({ ...spec, select: m.topK(4) }) !== specHash(spec));
});

Deno.test("inference at another input size resizes the position embeddings (and runs under ORT's optimizers)", async () => {
  const spec = base({ select: m.topK(3) });
  const g = inferenceGraph(spec, { batch: 1, height: 48, width: 40, trainSize: [S, S] });
  const out = await runGraph(g, {
    images: value("float32", new Float32Array(3 * 48 * 40).fill(0.5), [1, 3, 48, 40]),
  });
  assertEquals(out.classes.length, 48 * 40);
  assertEquals(out.logits.length, K * 6 * 5);
});
