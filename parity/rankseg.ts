/**
 * RankSeg parity: kappa's layers against the official code (openseg-group/RankSeg, run by
 * reference.py in float64) on the same weights and inputs: the multi-label losses, GroupWiseLinear,
 * the three ξ heads, the rank LayerNorm (RA), and the two Segmenter + RankSeg heads in training mode
 * (top-κ selection, ψ, RA, rank targets, loss_img, loss_seg and every gradient).
 *
 * kappa builds each piece from its own layers (`layers/xi.ts`, `layers/segmenter.ts`,
 * `interpret/segmenter.ts`'s losses) and differentiates it with its own autodiff; the official modules
 * are built only by reference.py. The official Segmenter heads run one image per forward (their gather
 * breaks for B > 1, ../shared/reference/README.md); kappa runs both images as one batch of 2, and is
 * compared with the two official runs (outputs stacked, losses and parameter gradients averaged).
 */
import { Graph, type Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import * as m from "../dsl/model.ts";
import { groupWiseLinear, multiLabelHead, sinePositions } from "../layers/xi.ts";
import { linear } from "../layers/linear.ts";
import { applyTemperature } from "../layers/temperature.ts";
import { segmenterHead } from "../layers/segmenter.ts";
import { asymmetricLoss, binaryCrossEntropy } from "../layers/losses.ts";
import { rankSegLosses } from "../interpret/segmenter.ts";
import type { Reference } from "./reference_data.ts";
import { type Check, closeRow, exactRow, type Pair, TOLERANCE } from "./compare.ts";
import { f32, GRAD, i64, outputGradients, probe, runKappa } from "./kappa_run.ts";
import { mapParameters, type Mapped, type NameRule, type NameTable, toKappaLayout } from "./names.ts";

const METHOD = "RankSeg";

/** The configurations reference.py records (its `store.case(...)` calls). */
interface LossConfig {
  readonly loss: "asl" | "bce";
  readonly gammaNeg: number;
  readonly gammaPos: number;
  readonly clip: number;
  readonly detachFocusing?: boolean;
  readonly weight: number;
}
interface ModuleConfig {
  readonly kind: string;
  readonly classes: number;
  readonly dim: number;
  readonly heads: number;
  readonly mlp: number;
  readonly pool: number;
  readonly layers: number;
  readonly grid: [number, number];
  readonly k: number;
  readonly label: [number, number];
  readonly images: number;
  readonly multiLabelLoss: LossConfig;
}
type Outputs = Map<string, Float64Array | BigInt64Array>;

const floats = (out: Outputs, name: string): Float64Array => {
  const v = out.get(name);
  if (!(v instanceof Float64Array)) throw new Error(`parity: kappa output "${name}" is missing or not float`);
  return v;
};
const ints = (out: Outputs, name: string): number[] => {
  const v = out.get(name);
  if (!(v instanceof BigInt64Array)) throw new Error(`parity: kappa output "${name}" is missing or not int`);
  return Array.from(v, Number);
};

/** Pixel tokens [b, h·w, c] of an NCHW map (PyTorch's `x.view(B, C, -1).permute(0, 2, 1)`). */
const tokens = (x: Tensor): Tensor => {
  const [b, c, h, w] = x.shape;
  return o.transpose(o.reshape(x, [b, c, h * w]), [0, 2, 1]);
};

/** The transformer block of the official heads (timm layout) → kappa's `transformerBlock`. */
const block = (to: string, from: string): NameRule => ({ to, from, layout: "torch" });

/** Concatenation of float arrays (per-image official tensors → one batch). */
const concat = (parts: readonly ArrayLike<number>[]): Float64Array => {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(Array.from(p), at);
    at += p.length;
  }
  return out;
};
const scale = (xs: ArrayLike<number>, s: number) => Float64Array.from(xs, (x) => x * s);
const mean = (parts: readonly ArrayLike<number>[]) => {
  const out = new Float64Array(parts[0].length);
  for (const p of parts) for (let i = 0; i < out.length; i++) out[i] += p[i] / parts.length;
  return out;
};

/**
 * Gradient pairs of every mapped parameter: kappa's `grad:<name>` against the official gradient of its
 * source, moved to kappa's layout, averaged over the official runs `prefixes` (one per image).
 */
const parameterGradients = (
  ref: Reference,
  prefixes: readonly string[],
  mapped: readonly Mapped[],
  out: Outputs,
  shapes: ReadonlyMap<string, readonly number[]>,
): Pair[] =>
  mapped.map(({ kappa, source, rule }) => {
    const official = (prefix: string) => {
      const t = ref.get(`${prefix}.grad.param.${source}`);
      const moved = toKappaLayout(t.data as Float64Array, t.shape, shapes.get(kappa)!, rule);
      if (typeof moved === "string") throw new Error(`parity: gradient of ${source}: ${moved}`);
      return moved;
    };
    return {
      name: kappa,
      ...(/\.attn\.k\.bias$/.test(kappa)
        ? { zero: "a key bias: the softmax over keys ignores a shift shared by every key" }
        : {}),
      kappa: floats(out, GRAD + kappa),
      official: mean(prefixes.map(official)),
      torchFloat32: mean(prefixes.map((p) => official(`${p}.f32`))),
    };
  });

const shapesOf = (g: Graph) =>
  new Map(g.nodes.flatMap((n) => n.prim.op === "variable" ? [[n.prim.name, n.prim.shape] as const] : []));

/** Forward row, gradient row (parameters + inputs) of a module probed by L = Σ w ⊙ out. */
const moduleRows = async (
  ref: Reference,
  c: string,
  component: string,
  table: NameTable,
  build: (g: Graph) => Tensor,
  inputs: readonly string[],
): Promise<Check[]> => {
  const g = new Graph(c);
  const output = build(g);
  g.output("out", output);
  const { values, mapped } = mapParameters(g, ref, `${c}.param.`, table);
  const name = outputName(ref, c);
  const loss = probe(output, ref.floats(`${c}.probe.${name}`));
  outputGradients(g, loss, [...mapped.map((x) => x.kappa), ...inputs]);
  const feeds = Object.fromEntries(
    inputs.map((n) => [n, f32(ref.floats(`${c}.input.${n}`), ref.get(`${c}.input.${n}`).shape)]),
  );
  const out = await runKappa(g, feeds, values);
  return [
    closeRow(METHOD, component, `${name} (forward)`, [{
      name,
      kappa: floats(out, "out"),
      official: ref.floats(`${c}.out.${name}`),
      torchFloat32: ref.floats(`${c}.f32.out.${name}`),
    }], TOLERANCE.values),
    closeRow(
      METHOD,
      component,
      `gradients (${mapped.length} parameters + input)`,
      [
        ...parameterGradients(ref, [c], mapped, out, shapesOf(g)),
        ...inputs.map((n) => ({
          name: `input ${n}`,
          kappa: floats(out, GRAD + n),
          official: ref.floats(`${c}.grad.input.${n}`),
          torchFloat32: ref.floats(`${c}.f32.grad.input.${n}`),
        })),
      ],
      TOLERANCE.gradients,
    ),
  ];
};

/** The probed output of a module case (reference.py stores one probe per case). */
const outputName = (ref: Reference, c: string) => {
  const names = ref.under(`${c}.probe.`);
  if (names.length !== 1) throw new Error(`parity: case ${c} has ${names.length} probes`);
  return names[0];
};

// ---------------------------------------------------------------------------------------------------
// The cases

const multiLabelLosses = async (ref: Reference): Promise<Check[]> => {
  const rows: Check[] = [];
  for (const [c, cfg] of Object.entries(ref.cases).filter(([, v]) => v.kind === "multiLabelLoss")) {
    const x = ref.get(`${c}.input.logits`), y = ref.get(`${c}.input.target`);
    const g = new Graph(c);
    const logits = o.input(g, "logits", x.shape), target = o.input(g, "target", y.shape);
    const k = cfg as unknown as LossConfig;
    const loss = k.loss === "bce" ? binaryCrossEntropy(logits, target) : asymmetricLoss(logits, target, {
      gammaNeg: k.gammaNeg,
      gammaPos: k.gammaPos,
      clip: k.clip,
      detachFocusing: k.detachFocusing === true,
    });
    g.output("loss", loss);
    outputGradients(g, loss, ["logits"]);
    const out = await runKappa(g, {
      logits: f32(x.data as Float64Array, x.shape),
      target: f32(y.data as Float64Array, y.shape),
    });
    const component = k.loss === "bce"
      ? "BCE (BCEWithLogits, mean over B·K)"
      : `ASL (γ₋ ${k.gammaNeg}, γ₊ ${k.gammaPos}, clip ${k.clip}${
        k.detachFocusing ? ", focusing detached" : ""
      })`;
    rows.push(
      closeRow(METHOD, component, "loss", [{
        name: "loss",
        kappa: floats(out, "loss"),
        official: ref.floats(`${c}.out.loss`),
        torchFloat32: ref.floats(`${c}.f32.out.loss`),
      }], TOLERANCE.values),
      closeRow(METHOD, component, "∂loss/∂logits", [{
        name: "logits",
        kappa: floats(out, GRAD + "logits"),
        official: ref.floats(`${c}.grad.input.logits`),
        torchFloat32: ref.floats(`${c}.f32.grad.input.logits`),
      }], TOLERANCE.gradients),
    );
  }
  return rows;
};

const XI_ENCODER: NameTable = {
  name: "RankSegEncoderHead(orig=True) → kappa ξ transformerEncoder",
  rules: [
    { to: "proj.", from: "proj_dec.", layout: "torch" },
    { to: "xi.classEmbed", from: "cls_emb", layout: "same" },
    block("xi.block.", "block."),
    { to: "xi.norm.", from: "norm.", layout: "torch" },
    { to: "xi.fc.weight", from: "fc.W", layout: "same" },
    { to: "xi.fc.bias", from: "fc.b", layout: "same" },
  ],
};

const xiDecoderTable = (layers: number): NameTable => ({
  name: "RankSegDecoderHead (Query2Label) → kappa ξ transformerDecoder",
  rules: [
    { to: "inputProj.", from: "input_proj.", layout: "torch" },
    { to: "xi.classEmbed", from: "query_embed.weight", layout: "same" },
    ...Array.from({ length: layers }, (_, i): NameRule[] => {
      const src = `transformer.decoder.layers.${i}.`;
      return [
        ...(["q", "k", "v"] as const).map((p, j): NameRule => ({
          to: `xi.layers.${i}.attn.${p}.`,
          from: `${src}multihead_attn.in_proj_`,
          layout: "torch",
          part: [j, 3],
        })),
        { to: `xi.layers.${i}.attn.proj.`, from: `${src}multihead_attn.out_proj.`, layout: "torch" },
        ...["norm2", "norm3", "linear1", "linear2"].map((n): NameRule => ({
          to: `xi.layers.${i}.${n}.`,
          from: `${src}${n}.`,
          layout: "torch",
        })),
      ];
    }).flat(),
    { to: "xi.norm.", from: "transformer.decoder.norm.", layout: "torch" },
    { to: "xi.fc.weight", from: "fc.W", layout: "same" },
    { to: "xi.fc.bias", from: "fc.b", layout: "same" },
  ],
  unused: { "position_embedding.pe": "a constant buffer, compared on its own (sine position code)" },
});

const XI_GAP: NameTable = {
  name: "RankSegGlobalPoolingHead → kappa ξ gapLinear({ hidden: true })",
  rules: [
    { to: "xi.hidden.", from: "1.conv.", layout: "torch" },
    { to: "xi.fc.", from: "2.", layout: "torch" },
  ],
  kappaOnly: { "xi.classEmbed": "ψ's class embeddings; the GAP head's scores do not read them" },
};

const RANK_LAYERNORM: NameTable = {
  name: "nn.LayerNorm(κ) (mask_norm) → kappa τ rankLayerNorm",
  rules: [{ to: "temperature.", from: "", layout: "torch" }],
};

const psiRules = (layers: number, firstSource: number): NameRule[] => [
  ...Array.from({ length: layers }, (_, i) => block(`psi.blocks.${i}.`, `blocks.${i + firstSource}.`)),
  { to: "psi.norm.", from: "decoder_norm.", layout: "torch" },
  { to: "psi.projPatch", from: "proj_patch", layout: "same" },
  { to: "psi.projClasses", from: "proj_classes", layout: "same" },
  { to: "temperature.", from: "mask_norm.", layout: "torch" },
];

/** MaskTransformerRankSegHead: ξ is decoder block 0 (+ decoder_norm2, ml_fc), ψ the other blocks. */
const fusedTable = (layers: number): NameTable => ({
  name:
    "MaskTransformerRankSegHead → kappa segmenter (ξ transformerEncoder, ψ maskTransformer, τ rankLayerNorm)",
  rules: [
    { to: "proj.", from: "proj_dec.", layout: "torch" },
    { to: "xi.classEmbed", from: "cls_emb", layout: "same" },
    block("xi.block.", "blocks.0."),
    { to: "xi.norm.", from: "decoder_norm2.", layout: "torch" },
    { to: "xi.fc.weight", from: "ml_fc.W", layout: "same" },
    { to: "xi.fc.bias", from: "ml_fc.b", layout: "same" },
    ...psiRules(layers - 1, 1),
  ],
});

/** MaskTransformerRankSegDecoderHead with the GAP ξ; ψ classifies against the raw cls_emb. */
const gapHeadTable = (layers: number): NameTable => ({
  name:
    "MaskTransformerRankSegDecoderHead (GAP ξ) → kappa segmenter (ξ gapLinear({ hidden }), ψ maskTransformer)",
  rules: [
    { to: "xi.classEmbed", from: "cls_emb", layout: "same" },
    { to: "xi.hidden.", from: "img_cls_head.1.conv.", layout: "torch" },
    { to: "xi.fc.", from: "img_cls_head.2.", layout: "torch" },
    ...psiRules(layers, 0),
  ],
  unused: {
    "proj_dec.weight": "set to the identity: ξ and ψ then read the same tokens, as kappa's do",
    "proj_dec.bias": "set to 0 (see proj_dec.weight)",
  },
});

/** A full head (train mode) on two images: kappa's batch of 2 against two official B = 1 runs. */
const headRows = async (ref: Reference, c: string, component: string): Promise<Check[]> => {
  const cfg = ref.cases[c] as unknown as ModuleConfig;
  const images = cfg.images;
  const runs = Array.from({ length: images }, (_, i) => `${c}.${i}`);
  const [h, w] = cfg.grid;
  const x0 = ref.get(`${runs[0]}.input.x`);
  const [, channels] = x0.shape;
  const labelShape = [images, ...cfg.label];
  const fused = cfg.kind === "segmenterFused";
  const mlCfg = cfg.multiLabelLoss;
  const spec = m.segmenter({
    classes: cfg.classes,
    backbone: m.convNet(),
    headDim: cfg.dim,
    xi: fused
      ? m.transformerEncoder({ pool: cfg.pool, heads: cfg.heads, mlpRatio: cfg.mlp / cfg.dim })
      : m.gapLinear({ hidden: true }),
    psi: m.maskTransformer({
      layers: fused ? cfg.layers - 1 : cfg.layers,
      heads: cfg.heads,
      mlpRatio: cfg.mlp / cfg.dim,
    }),
    select: m.topK(cfg.k),
    temperature: m.rankLayerNorm(),
    multiLabelLoss: mlCfg.loss === "bce" ? m.bceLoss(mlCfg.weight) : m.asymmetricLoss({
      weight: mlCfg.weight,
      gammaNeg: mlCfg.gammaNeg,
      gammaPos: mlCfg.gammaPos,
      clip: mlCfg.clip,
    }),
    pixelLossReduction: "allPixels",
  });
  const g = new Graph(c);
  const x = o.input(g, "x", [images, channels, h, w]);
  const labels = o.input(g, "labels", labelShape, "int64");
  // The fused head's ξ and ψ read proj_dec's tokens; the GAP head's proj_dec is the identity (reference.py).
  const pixels = fused ? linear(tokens(x), spec.headDim, { name: "proj" }) : tokens(x);
  const out = segmenterHead(spec, pixels, [h, w], { mode: "train", labels });
  const { pixel, multiLabel } = rankSegLosses(spec, out, labels);
  const lossImg = o.mul(multiLabel!, spec.multiLabelLoss!.weight);
  g.output("scores", out.scores!);
  g.output("selected", out.selected!.indices);
  g.output("masks", out.logits!);
  g.output("targets", pixel!.targets);
  g.output("segLogit", o.transpose(pixel!.logits, [0, 3, 1, 2]));
  g.output("lossImg", lossImg);
  g.output("lossSeg", pixel!.loss);
  const table = fused ? fusedTable(cfg.layers) : gapHeadTable(cfg.layers);
  const { values, mapped } = mapParameters(g, ref, `${c}.param.`, table);
  outputGradients(g, o.add(lossImg, pixel!.loss), [...mapped.map((v) => v.kappa), "x"]);
  const kappa = await runKappa(g, {
    x: f32(concat(runs.map((r) => ref.floats(`${r}.input.x`))), [images, channels, h, w]),
    labels: i64(concat(runs.map((r) => ref.ints(`${r}.input.labels`))), labelShape),
  }, values);

  const stacked = (name: string, f32run = false) =>
    concat(runs.map((r) => ref.floats(`${r}${f32run ? ".f32" : ""}.out.${name}`)));
  const averaged = (name: string, f32run = false) =>
    mean(runs.map((r) => ref.floats(`${r}${f32run ? ".f32" : ""}.out.${name}`)));
  const pair = (kappaName: string, name: string, combine: typeof stacked): Pair => ({
    name,
    kappa: floats(kappa, kappaName),
    official: combine(name),
    torchFloat32: combine(name, true),
  });
  // Per-image losses are means, so the batch's loss is their mean and so are its parameter gradients;
  // an image's input gradient is its own run's, halved.
  const inputGrad = (f32run: boolean) =>
    scale(concat(runs.map((r) => ref.floats(`${r}${f32run ? ".f32" : ""}.grad.input.x`))), 1 / images);
  return [
    closeRow(METHOD, component, "ξ scores (forward)", [pair("scores", "scores", stacked)], TOLERANCE.values),
    exactRow(
      METHOD,
      component,
      "top-κ classes, best first",
      ints(kappa, "selected"),
      concat(runs.map((r) => ref.ints(`${r}.out.topk_index`))),
    ),
    closeRow(
      METHOD,
      component,
      "ψ + RA rank-ordered logits (masks)",
      [pair("masks", "masks", stacked)],
      TOLERANCE.values,
    ),
    exactRow(
      METHOD,
      component,
      "rank targets (255 outside top-κ)",
      ints(kappa, "targets"),
      concat(runs.map((r) => ref.ints(`${r}.out.rank_targets`))),
    ),
    closeRow(
      METHOD,
      component,
      "logits upsampled to the label",
      [pair("segLogit", "seg_logit", stacked)],
      TOLERANCE.values,
    ),
    closeRow(METHOD, component, `loss_img (${mlCfg.loss === "bce" ? "BCE" : "ASL"} × ${mlCfg.weight})`, [
      pair("lossImg", "loss_img", averaged),
    ], TOLERANCE.values),
    closeRow(METHOD, component, "loss_seg (mmseg CE, mean over all pixels)", [
      pair("lossSeg", "loss_seg", averaged),
    ], TOLERANCE.values),
    closeRow(
      METHOD,
      component,
      `gradients of loss_img + loss_seg (${mapped.length} parameters + input)`,
      [
        ...parameterGradients(ref, runs, mapped, kappa, shapesOf(g)),
        {
          name: "input x",
          kappa: floats(kappa, GRAD + "x"),
          official: inputGrad(false),
          torchFloat32: inputGrad(true),
        },
      ],
      TOLERANCE.gradients,
    ),
  ];
};

/** Every RankSeg check, in table order. */
export const ranksegChecks = async (ref: Reference): Promise<Check[]> => {
  const cfg = (c: string) => ref.cases[c] as unknown as ModuleConfig;
  const rows = await multiLabelLosses(ref);

  const gw = cfg("groupwise-linear");
  rows.push(
    ...await moduleRows(
      ref,
      "groupwise-linear",
      "GroupWiseLinear",
      {
        name: "GroupWiseLinear → kappa groupWiseLinear",
        rules: [
          { to: "xi.fc.weight", from: "W", layout: "same" },
          { to: "xi.fc.bias", from: "b", layout: "same" },
        ],
      },
      (g) => g.scope("xi", () => groupWiseLinear(o.input(g, "x", [2, gw.classes, gw.dim]))),
      ["x"],
    ),
  );

  const enc = cfg("xi-encoder");
  rows.push(
    ...await moduleRows(ref, "xi-encoder", "ξ transformer encoder (RankSegEncoderHead)", XI_ENCODER, (g) => {
      const x = o.input(g, "x", ref.get("xi-encoder.input.x").shape);
      const pixels = linear(tokens(x), enc.dim, { name: "proj" });
      const spec = m.transformerEncoder({ pool: enc.pool, heads: enc.heads, mlpRatio: enc.mlp / enc.dim });
      return multiLabelHead(spec, pixels, enc.grid, enc.classes, true).scores;
    }, ["x"]),
  );

  const dec = cfg("xi-decoder");
  rows.push(
    ...await moduleRows(
      ref,
      "xi-decoder",
      "ξ Query2Label decoder (RankSegDecoderHead)",
      xiDecoderTable(dec.layers),
      (g) => {
        const x = o.input(g, "x", ref.get("xi-decoder.input.x").shape);
        const pixels = linear(tokens(x), dec.dim, { name: "inputProj" }); // its 1×1 input_proj
        const spec = m.transformerDecoder({
          layers: dec.layers,
          pool: dec.pool,
          heads: dec.heads,
          mlpRatio: dec.mlp / dec.dim,
        });
        return multiLabelHead(spec, pixels, [dec.pool, dec.pool], dec.classes, true).scores;
      },
      ["x"],
    ),
  );
  // The sine position code: the official buffer [1, d, h, w] (computed in float32) vs kappa's [h·w, d].
  const pe = ref.get("xi-decoder.param.position_embedding.pe");
  const [, d, ph, pw] = pe.shape;
  const peTokens = new Float64Array(ph * pw * d);
  for (let c = 0; c < d; c++) {
    for (let p = 0; p < ph * pw; p++) peTokens[p * d + c] = pe.data[c * ph * pw + p] as number;
  }
  rows.push(
    closeRow(METHOD, "ξ Query2Label decoder (RankSegDecoderHead)", "2-D sine position code", [{
      name: "pe",
      kappa: sinePositions(ph, pw, d),
      official: peTokens,
    }], TOLERANCE.values),
  );

  const gap = cfg("xi-gap");
  rows.push(
    ...await moduleRows(ref, "xi-gap", "ξ global average pool (RankSegGlobalPoolingHead)", XI_GAP, (g) => {
      const x = o.input(g, "x", ref.get("xi-gap.input.x").shape);
      return multiLabelHead(m.gapLinear({ hidden: true }), tokens(x), gap.grid, gap.classes, true).scores;
    }, ["x"]),
  );

  rows.push(
    ...await moduleRows(ref, "rank-layernorm", "RA: rank LayerNorm (mask_norm)", RANK_LAYERNORM, (g) => {
      return applyTemperature(m.rankLayerNorm(), o.input(g, "x", ref.get("rank-layernorm.input.x").shape));
    }, ["x"]),
  );

  rows.push(
    ...await headRows(ref, "segmenter-fused", "Segmenter + RankSeg, ξ fused (MaskTransformerRankSegHead)"),
  );
  rows.push(
    ...await headRows(ref, "segmenter-gap", "Segmenter + RankSeg, GAP ξ (MaskTransformerRankSegDecoderHead)"),
  );
  return rows;
};
