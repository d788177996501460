/**
 * The model family compiles in every valid combination and trains on a tiny fixture; invalid
 * combinations are refused with a path error.
 */
import { Effect, Result } from "effect";
import { assert, assertEquals } from "./assert.ts";
import * as m from "../dsl/model.ts";
import { trainingGraph } from "../interpret/graphs.ts";
import { decodeSegmenter } from "../dsl/validate.ts";
import { adamW } from "../ir/optim.ts";
import { execute } from "../runtime/execute.ts";
import { graphStage, plan } from "../ir/plan.ts";
import { value } from "../ir/value.ts";
import { random } from "../core/random.ts";

const K = 6, B = 3, S = 32;
const backbone = m.vit({ dim: 16, depth: 1, heads: 2, patchSize: 8 });
const shapes = { batch: B, height: S, width: S, trainSize: [S, S] as const };

/** Images and labels where each image holds 2–3 classes in vertical bands. */
const fixture = () => {
  const rng = random(42);
  const images = Float32Array.from({ length: B * 3 * S * S }, () => rng.normal());
  const labels = new Int32Array(B * S * S);
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) labels[(b * S + y) * S + x] = x < 4 ? 255 : (b + Math.floor(x / 12)) % K;
    }
  }
  return { images: value("float32", images, [B, 3, S, S]), labels: value("int32", labels, [B, S, S]) };
};

const xis: (m.MultiLabelHead | null)[] = [
  null,
  m.transformerEncoder({ pool: 2 }),
  m.transformerDecoder({ pool: 2 }),
  m.gapLinear(),
];
const psis: m.PixelHead[] = [m.maskTransformer({ layers: 1 }), m.linearPsi()];
const selections: m.Selection[] = [
  m.all(),
  m.topK(3),
  m.groundTruth({ k: 3 }),
  m.groundTruth({ k: 3, train: false }),
];
const temperatures: m.Temperature[] = [m.shared(), m.rankAdaptive(), m.rankLayerNorm()];
const label = (x: { _tag: string } | null) => x?._tag ?? "none";

const specOf = (
  xi: m.MultiLabelHead | null,
  psi: m.PixelHead | null,
  select: m.Selection,
  temperature: m.Temperature,
) =>
  m.segmenter({
    classes: K,
    backbone,
    headDim: 16,
    xi,
    psi,
    select,
    temperature,
    multiLabelLoss: xi ? m.asymmetricLoss() : null,
  });

const trainsDown = (spec: m.Segmenter) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const g = trainingGraph(spec, shapes, { optimizer: adamW({ weightDecay: 0 }) });
    const ex = yield* execute(plan("t", g, [graphStage(g)]), { seed: 3 });
    const feeds = fixture();
    const losses: number[] = [];
    for (let step = 1; step <= 6; step++) {
      const out = yield* ex.run({
        ...feeds,
        lr: value("float32", Float32Array.of(3e-3), []),
        step: value("float32", Float32Array.of(step), []),
      });
      losses.push(out.get("loss")!.data[0] as number);
    }
    return losses;
  })));

const valid = xis.flatMap((xi) =>
  [...psis, null].flatMap((psi) =>
    selections.flatMap((select) => temperatures.map((temperature) => specOf(xi, psi, select, temperature)))
  )
).filter((spec) =>
  Result.isSuccess(decodeSegmenter(spec)) && (spec.psi !== null || spec.temperature._tag === "Shared")
);

Deno.test(`dsl: all ${valid.length} valid ξ × ψ × selection × τ combinations compile and lower the loss in 6 steps`, async () => {
  // 12 without ξ (all / oracle), 72 with a ξ, 3 multi-label-only models.
  assertEquals(valid.length, 87);
  for (const spec of valid) {
    const name = [
      label(spec.xi),
      label(spec.psi),
      spec.select._tag + ("train" in spec.select ? `(train=${spec.select.train})` : ""),
      spec.temperature._tag,
    ].join(" × ");
    const losses = await trainsDown(spec);
    assert(losses.every(Number.isFinite), `${name}: ${losses}`);
    assert(
      losses[losses.length - 1] < losses[0],
      `${name}: loss did not decrease: ${losses.map((l) => l.toFixed(4))}`,
    );
  }
});

Deno.test("dsl: invalid combinations are refused with a path error", () => {
  const errors = (spec: m.Segmenter) => {
    const r = decodeSegmenter(spec);
    return Result.isFailure(r) ? r.failure.map((v) => `${v.path}: ${v.message}`) : [];
  };
  assertEquals(errors(specOf(null, m.maskTransformer(), m.topK(3), m.shared())), [
    "model.select: topK needs a multi-label head to rank classes (model.xi is null)",
  ]);
  assertEquals(errors(specOf(null, m.maskTransformer(), m.groundTruth({ k: 3, train: false }), m.shared())), [
    "model.select: groundTruth with train: false trains with top-κ, which needs a multi-label head (model.xi is null)",
  ]);
  assertEquals(errors(m.segmenter({ classes: 133, backbone: m.vitTiny(), select: m.topK(200) })), [
    "model.select.k: 200 exceeds the number of classes (133)",
  ]);
  assertEquals(errors(m.segmenter({ classes: 133, backbone: m.vitTiny({ dim: 190 }), headDim: 192 })), [
    "model.backbone.dim: 190 is not divisible by heads (3)",
  ]);
  assertEquals(errors({ ...specOf(null, null, m.all(), m.shared()) }), [
    "model.psi: a model needs a pixel head or a multi-label head",
  ]);
  assertEquals(
    errors({ ...specOf(m.gapLinear(), m.linearPsi(), m.all(), m.shared()), multiLabelLoss: null }),
    [
      "model.multiLabelLoss: is required when model.xi is set",
    ],
  );
  assertEquals(errors({ ...specOf(null, m.linearPsi(), m.all(), m.shared()), ignoreIndex: 3 }), [
    "model.ignoreIndex: 3 is a class id (classes are 0..5); use a value outside",
  ]);
  // Structural errors come from Schema, with the same dotted paths.
  const structural = decodeSegmenter({
    ...specOf(null, m.linearPsi(), m.all(), m.shared()),
    classes: -2,
    headDim: "x",
  });
  assert(Result.isFailure(structural));
  assertEquals(structural.failure.map((v) => v.path), ["model.classes", "model.headDim"]);
});
