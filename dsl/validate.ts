/**
 * Spec validation: structural checks by Schema, then the rules that tie fields together. Every
 * violation is reported with its path, e.g. `model.select.k: 200 exceeds the number of classes (133)`.
 */
import { Data, Result, Schema, SchemaIssue } from "effect";
import {
  type Backbone,
  type PanopticSegmenter,
  type Segmenter,
  Segmenter as SegmenterSchema,
} from "./model.ts";

export interface Violation {
  readonly path: string;
  readonly message: string;
}

/**
 * A spec that fails validation; `source` names the file or value it came from (`file:line:column` for a
 * module that does not import). A violation with an empty path concerns the whole source (a missing file,
 * invalid JSON).
 */
export class SpecError extends Data.TaggedError("SpecError")<{
  readonly source: string;
  readonly violations: readonly Violation[];
}> {
  override get message(): string {
    return this.violations.map((v) => (v.path ? `${v.path}: ${v.message}` : v.message)).join("\n");
  }
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1();

/** Decodes `input` with `schema`, turning Schema issues into dotted-path violations under `root`. */
export const decodeWith = <S extends Schema.Constraint & Schema.ConstraintDecoder<unknown>>(
  schema: S,
  input: unknown,
  root: string,
): Result.Result<S["Type"], Violation[]> => {
  const decoded = Schema.decodeUnknownResult(schema)(input, { errors: "all", onExcessProperty: "error" });
  if (Result.isSuccess(decoded)) return Result.succeed(decoded.success);
  const { issues } = formatter(decoded.failure.issue);
  return Result.fail(issues.map((i) => ({
    path: [root, ...(i.path ?? []).map(String)].filter((p) => p !== "").join("."),
    message: i.message,
  })));
};

/** The cross-field rules of a backbone spec. */
export const backboneViolations = (b: Backbone, path: string): Violation[] => {
  const out: Violation[] = [];
  if (b._tag === "ViT" && b.dim % b.heads !== 0) {
    out.push({ path: `${path}.dim`, message: `${b.dim} is not divisible by heads (${b.heads})` });
  }
  if (b._tag === "ConvNet" && b.widths.length === 0) {
    out.push({ path: `${path}.widths`, message: "needs at least one stage" });
  }
  if (b._tag === "MobileNetV2") {
    const dup = b.outputs.find((o, i) => b.outputs.indexOf(o) !== i);
    if (dup) out.push({ path: `${path}.outputs`, message: `"${dup}" is listed twice` });
    if (b.pretrained !== null && b.pretrained.trim() === "") {
      out.push({ path: `${path}.pretrained`, message: "must name a .safetensors file, or be null" });
    }
  }
  return out;
};

/** The cross-field rules of a segmenter spec. */
export const segmenterViolations = (m: Segmenter, path = "model"): Violation[] => {
  const out: Violation[] = [];
  const v = (p: string, message: string) => out.push({ path: `${path}.${p}`, message });
  const divisible = (p: string, dim: number, heads: number) => {
    if (dim % heads !== 0) v(p, `${dim} is not divisible by heads (${heads})`);
  };
  out.push(...backboneViolations(m.backbone, `${path}.backbone`));
  if (m.xi && m.xi._tag !== "GapLinear") divisible("headDim", m.headDim, m.xi.heads);
  if (m.psi?._tag === "MaskTransformer") divisible("headDim", m.headDim, m.psi.heads);
  if (m.ignoreIndex >= 0 && m.ignoreIndex < m.classes) {
    v("ignoreIndex", `${m.ignoreIndex} is a class id (classes are 0..${m.classes - 1}); use a value outside`);
  }
  const ranked = m.xi !== null || m.scheme._tag === "Independent";
  const s = m.select;
  if (s._tag !== "All" && s.k > m.classes) {
    v("select.k", `${s.k} exceeds the number of classes (${m.classes})`);
  }
  if (s._tag === "TopK" && !ranked) {
    v("select", "topK needs a multi-label head to rank classes (model.xi is null)");
  }
  if (s._tag === "GroundTruth" && !s.train && !ranked) {
    v(
      "select",
      "groundTruth with train: false trains with top-κ, which needs a multi-label head (model.xi is null)",
    );
  }
  if (s._tag === "GroundTruth" && !s.train && !s.eval) {
    v("select", "groundTruth with train and eval both false is topK");
  }
  if (m.xi && !m.multiLabelLoss) v("multiLabelLoss", "is required when model.xi is set");
  if (!m.xi && m.multiLabelLoss) v("multiLabelLoss", "is set but model.xi is null");
  if (!m.psi && !m.xi) v("psi", "a model needs a pixel head or a multi-label head");
  if (!m.psi && s._tag !== "All") {
    v("select", "a multi-label-only model (psi: null) selects nothing; use all()");
  }
  out.push(...larvSegViolations(m, path));
  if (m.scheme._tag === "Independent") {
    if (m.xi) v("xi", "the independent scheme ranks with a separate model (scheme.ranker); set xi to null");
    if (m.scheme.ranker.trim() === "") {
      v("scheme.ranker", "must name the run folder of the multi-label model");
    }
  }
  return out;
};

/**
 * LarvSeg's rules. How it composes with RankSeg: the LarvSeg classifier is a pixel head like any other
 * (with top-κ its z-score runs over the κ selected classes), but its two losses need logits for every
 * class of the image-level labels, so they require `select: all()`. (RankSeg's ξ can learn from
 * image-level labels on its own: its multi-label loss needs no masks.)
 */
const larvSegViolations = (m: Segmenter, path: string): Violation[] => {
  const out: Violation[] = [];
  const v = (p: string, message: string) => out.push({ path: `${path}.${p}`, message });
  if (m.psi?._tag === "LarvSeg" && m.temperature._tag !== "None") {
    v("temperature", "the LarvSeg classifier's z-score with γ is its temperature; use noTemperature()");
  }
  for (
    const [field, name] of [["imageLevelLoss", "the image-level loss"], [
      "attentiveClassifier",
      "the attentive classifier",
    ]] as const
  ) {
    if (m[field] === undefined) continue;
    if (!m.psi) v(field, `${name} needs a pixel head (model.psi is null)`);
    if (m.select._tag !== "All" && !(m.select._tag === "TopK" && m.select.train === false)) {
      v(
        "select",
        `${name} (model.${field}) needs logits for every class; use all() or topK(k, { train: false })`,
      );
    }
  }
  const a = m.attentiveClassifier;
  if (a) {
    if (m.psi && m.psi._tag !== "LarvSeg") {
      v("attentiveClassifier", "needs the LarvSeg classifier's embeddings (model.psi: larvSegClassifier())");
    }
    if (a.variant === "singleImage" && a.slots !== 1) {
      v("attentiveClassifier.slots", `the single-image variant has one slot (M = 1), got ${a.slots}`);
    }
  }
  return out;
};

/**
 * The cross-field rules of a panoptic segmenter: a multi-scale backbone with a stride-4 map (the pixel
 * decoder's output stride), widths that divide into heads, κ within K.
 */
export const panopticViolations = (m: PanopticSegmenter, path = "model"): Violation[] => {
  const out: Violation[] = [];
  const v = (p: string, message: string) => out.push({ path: `${path}.${p}`, message });
  const b = m.backbone;
  out.push(...backboneViolations(b, `${path}.backbone`));
  if (b._tag === "ViT") {
    v("backbone", "a panoptic segmenter needs a multi-scale backbone (convNet or mobileNetV2), not a ViT");
  }
  if (b._tag === "ConvNet" && b.widths.length < 2) {
    v(
      "backbone.widths",
      `${b.widths.length} stage(s) reach stride ${
        2 ** b.widths.length
      }; the pixel decoder needs a stride-4 map (2 stages or more)`,
    );
  }
  if (b._tag === "MobileNetV2" && !b.outputs.includes("c2")) {
    v("backbone.outputs", 'must include "c2": the pixel decoder needs the stride-4 map');
  }
  if (m.queryDim % m.heads !== 0) v("queryDim", `${m.queryDim} is not divisible by heads (${m.heads})`);
  if (m.ignoreIndex >= 0 && m.ignoreIndex <= m.classes) {
    v("ignoreIndex", `${m.ignoreIndex} is a class id or void (0..${m.classes}); use a value outside`);
  }
  const q = m.queryClassification;
  if (q._tag === "RankSeg" && q.k > m.classes) {
    v("queryClassification.k", `${q.k} exceeds the number of classes (${m.classes})`);
  }
  return out;
};

/** Decodes and validates a segmenter spec. */
export const decodeSegmenter = (input: unknown, path = "model"): Result.Result<Segmenter, Violation[]> =>
  Result.flatMap(decodeWith(SegmenterSchema, input, path), (m) => {
    const violations = segmenterViolations(m, path);
    return violations.length ? Result.fail(violations) : Result.succeed(m);
  });
