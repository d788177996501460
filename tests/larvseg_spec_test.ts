/** LarvSeg's spec variants: constructors with the paper's defaults, validation with paths, JSON. */
import { Result } from "effect";
import { assert, assertEquals } from "./assert.ts";
import * as m from "../dsl/model.ts";
import { decodeSegmenter, segmenterViolations } from "../dsl/validate.ts";
import { canonicalJson } from "../dsl/canonical.ts";
import { experiment, experimentViolations } from "../dsl/experiment.ts";
import { evalConfig, trainConfig } from "../dsl/training.ts";
import { folder, testPipeline, trainPipeline } from "../dsl/dataset.ts";

const backbone = m.vit({ dim: 16, depth: 1, heads: 2, patchSize: 8 });
const paths = (s: m.Segmenter) => segmenterViolations(s).map((v) => `${v.path}: ${v.message}`);

Deno.test("larvSegmenter: the paper's defaults", () => {
  const s = m.larvSegmenter({ classes: 59, backbone });
  assertEquals(s.psi, { _tag: "LarvSeg", epsilon: 1e-5 });
  assertEquals(s.select, { _tag: "All" });
  assertEquals(s.temperature, { _tag: "None" });
  assertEquals(s.xi, null);
  assertEquals(s.imageLevelLoss, { _tag: "ImageLevel", weight: 0.1 });
  assertEquals(s.attentiveClassifier, {
    _tag: "CategoryWiseAttentive",
    weight: 0.1,
    variant: "crossImage",
    slots: 20,
    pixels: 20,
    labelsPerImage: 16,
  });
  const single = m.attentiveClassifier({ variant: "singleImage" });
  assertEquals([single.slots, single.pixels], [1, 1]);
  assertEquals(m.bankShape(s, s.attentiveClassifier!), [59, 20, 20, 16]);
  assertEquals(m.attentivePairs(m.larvSegmenter({ classes: 3, backbone }), s.attentiveClassifier!), 3);
  assertEquals(paths(s), []);
  // Dropping a loss leaves it out of the spec (no `undefined` key that JSON would lose).
  const plain = m.larvSegmenter({ classes: 59, backbone, attentiveClassifier: undefined });
  assert(!("attentiveClassifier" in plain));
  assert(Result.isSuccess(decodeSegmenter(JSON.parse(canonicalJson(plain)))));
});

Deno.test("specs without LarvSeg's losses keep their JSON (and so their hash)", () => {
  const s = m.segmenter({ classes: 7, backbone });
  assert(!canonicalJson(s).includes("imageLevelLoss") && !canonicalJson(s).includes("attentiveClassifier"));
  const l = m.larvSegmenter({ classes: 7, backbone });
  const decoded = decodeSegmenter(JSON.parse(canonicalJson(l)));
  assert(Result.isSuccess(decoded));
  assertEquals(canonicalJson(decoded.success), canonicalJson(l));
});

Deno.test("LarvSeg's cross-field rules name the field", () => {
  const s = m.larvSegmenter({ classes: 59, backbone });
  assertEquals(paths({ ...s, temperature: m.rankAdaptive() }), [
    "model.temperature: the LarvSeg classifier's z-score with γ is its temperature; use noTemperature()",
  ]);
  assertEquals(paths({ ...s, xi: m.gapLinear(), multiLabelLoss: m.asymmetricLoss(), select: m.topK(10) }), [
    "model.select: the image-level loss (model.imageLevelLoss) needs logits for every class; use all() or topK(k, { train: false })",
    "model.select: the attentive classifier (model.attentiveClassifier) needs logits for every class; use all() or topK(k, { train: false })",
  ]);
  assertEquals(paths({ ...s, psi: m.linearPsi(), temperature: m.shared() }), [
    "model.attentiveClassifier: needs the LarvSeg classifier's embeddings (model.psi: larvSegClassifier())",
  ]);
  assertEquals(
    paths({ ...s, attentiveClassifier: m.attentiveClassifier({ variant: "singleImage", slots: 20 }) }),
    ["model.attentiveClassifier.slots: the single-image variant has one slot (M = 1), got 20"],
  );
  // Composition with RankSeg: the LarvSeg classifier under top-κ (no LarvSeg losses) is valid.
  const ranked = m.segmenter({
    classes: 59,
    backbone,
    xi: m.gapLinear(),
    psi: m.larvSegClassifier(),
    select: m.topK(10),
    temperature: m.noTemperature(),
  });
  assertEquals(paths(ranked), []);
});

Deno.test("the bank's K must fit in the training crop's feature pixels", () => {
  const e = experiment({
    name: "t",
    model: m.larvSegmenter({
      classes: 3,
      backbone,
      attentiveClassifier: m.attentiveClassifier({ pixels: 20 }),
    }),
    data: {
      dataset: folder({ root: "x", classes: { names: ["a", "b", "c"] } }),
      train: trainPipeline({ cropSize: [32, 32] }),
      test: testPipeline(),
    },
    train: trainConfig({ steps: 1 }),
    eval: evalConfig(),
  });
  assertEquals(experimentViolations(e).map((v) => `${v.path}: ${v.message}`), [
    "model.attentiveClassifier.pixels: 20 exceeds the 4×4 = 16 feature pixels of the training crop",
  ]);
});

Deno.test("RankSeg + LarvSeg: topK(κ, { train: false }) trains over every class and selects κ at inference", async () => {
  const { lossGraph, inferenceGraph } = await import("../interpret/graphs.ts");
  const s = m.larvSegmenter({
    classes: 6,
    backbone,
    xi: m.transformerEncoder({ pool: 2, heads: 2 }),
    multiLabelLoss: m.asymmetricLoss({ weight: 1 }),
    select: m.topK(3, { train: false }),
    attentiveClassifier: m.attentiveClassifier({ slots: 2, pixels: 2, labelsPerImage: 3 }),
  });
  assertEquals(paths(s), []);
  assertEquals(m.topK(3), { _tag: "TopK", k: 3 }); // the plain form keeps its JSON (and existing hashes)
  const shapes = { batch: 2, height: 16, width: 16, trainSize: [16, 16] as const };
  const { graph } = lossGraph(s, shapes);
  // Training: no selection, the LarvSeg losses and ξ's multi-label loss are all there.
  for (const name of ["loss.imageLevel", "loss.attentive", "loss.multiLabel"]) {
    assert(graph.outputs.has(name), name);
  }
  const inference = inferenceGraph(s, shapes);
  assertEquals(inference.outputs.get("selected")!.shape, [2, 3]);
});
