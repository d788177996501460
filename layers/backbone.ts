/**
 * Backbones: an image batch [b, 3, H, W] → pixel tokens [b, h·w, d] on an h×w grid.
 */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { normal, ones, truncNormal, zeros } from "../ir/init.ts";
import { type Backbone, type ConvNet, lastOutput, type MobileNetV2, type ViT } from "../dsl/model.ts";
import { mobileNetV2 } from "./mobilenet_v2.ts";
import { linear } from "./linear.ts";
import { layerNorm } from "./norm.ts";
import { transformerBlock } from "./block.ts";

export interface Features {
  readonly tokens: Tensor;
  readonly grid: readonly [number, number];
}

/**
 * ViT: patch embedding (a stride-p convolution, written as reshape + matmul), learned position
 * embeddings for the training grid (bilinearly resized for other input sizes), pre-norm blocks, final norm.
 */
export const vit = (x: Tensor, spec: ViT, trainGrid: readonly [number, number], train: boolean): Features => {
  const [b, c, height, width] = x.shape;
  const p = spec.patchSize;
  const [gh, gw] = [height / p, width / p];
  const patches = o.reshape(o.transpose(o.reshape(x, [b, c, gh, p, gw, p]), [0, 2, 4, 1, 3, 5]), [
    b,
    gh * gw,
    c * p * p,
  ]);
  let tokens = linear(patches, spec.dim, { name: "patchEmbed" });
  const pos = o.variable(x.graph, "posEmbed", [1, trainGrid[0] * trainGrid[1], spec.dim], truncNormal(0.02));
  const posHere = gh === trainGrid[0] && gw === trainGrid[1] ? pos : o.reshape(
    o.transpose(o.resize(o.transpose(o.reshape(pos, [1, ...trainGrid, spec.dim]), [0, 3, 1, 2]), gh, gw), [
      0,
      2,
      3,
      1,
    ]),
    [1, gh * gw, spec.dim],
  );
  tokens = o.add(tokens, posHere);
  for (let i = 0; i < spec.depth; i++) {
    tokens = transformerBlock(tokens, {
      heads: spec.heads,
      mlpRatio: spec.mlpRatio,
      dropout: train ? spec.dropout : 0,
      epsilon: spec.epsilon,
      name: `blocks.${i}`,
    });
  }
  return { tokens: layerNorm(tokens, { name: "norm", epsilon: spec.epsilon }), grid: [gh, gw] };
};

/** GroupNorm with one group: normalize each image over (C, H, W), then a per-channel affine. */
const groupNorm1 = (x: Tensor): Tensor =>
  x.graph.scope("norm", () => {
    const [, c, h, w] = x.shape;
    const g = x.graph;
    const normalized = o.layerNorm(x, o.full(g, [c, h, w], 1), o.full(g, [c, h, w], 0), { axis: 1 });
    const gamma = o.variable(g, "weight", [1, c, 1, 1], ones),
      beta = o.variable(g, "bias", [1, c, 1, 1], zeros);
    return o.add(o.mul(normalized, gamma), beta);
  });

const conv3x3 = (x: Tensor, out: number, stride: 1 | 2, name: string, norm: boolean): Tensor =>
  x.graph.scope(name, () => {
    const cin = x.shape[1];
    const w = o.variable(x.graph, "weight", [out, cin, 3, 3], normal(Math.sqrt(2 / (cin * 9))));
    const bias = o.variable(x.graph, "bias", [1, out, 1, 1], zeros);
    const y = o.add(o.conv(x, w, { strides: [stride, stride], pads: [1, 1, 1, 1] }), bias);
    return norm ? groupNorm1(y) : y;
  });

/**
 * A small convolutional backbone: per stage a stride-2 3×3 conv, then residual 3×3 convs, GELU after
 * each; tokens get a final LayerNorm. Convolutions bring the locality prior that a ViT trained from
 * scratch on a few hundred images lacks.
 */
export const convNet = (x: Tensor, spec: ConvNet): Features => {
  const maps = convNetStages(x, spec);
  const h = maps[maps.length - 1];
  const [b, c, gh, gw] = h.shape;
  const tokens = o.transpose(o.reshape(h, [b, c, gh * gw]), [0, 2, 1]);
  return { tokens: layerNorm(tokens, { name: "norm" }), grid: [gh, gw] };
};

/** The ConvNet's feature map after each stage, [b, widths[s], H/2^(s+1), W/2^(s+1)] (no final norm). */
export const convNetStages = (x: Tensor, spec: ConvNet): Tensor[] => {
  const maps: Tensor[] = [];
  let h = x;
  spec.widths.forEach((width, s) =>
    x.graph.scope(`stages.${s}`, () => {
      h = o.gelu(conv3x3(h, width, 2, "down", spec.groupNorm));
      for (let i = 1; i < spec.blocksPerStage; i++) {
        h = o.add(h, o.gelu(conv3x3(h, width, 1, `conv${i}`, spec.groupNorm)));
      }
      maps.push(h);
    })
  );
  return maps;
};

/**
 * MobileNetV2's last requested map as tokens, without a normalization of its own: pretrained features
 * reach the head as the ImageNet network computes them.
 */
const mobileNetV2Tokens = (x: Tensor, spec: MobileNetV2): Features => {
  const map = mobileNetV2(x, spec)[lastOutput(spec)]!;
  const [b, c, gh, gw] = map.shape;
  return { tokens: o.transpose(o.reshape(map, [b, c, gh * gw]), [0, 2, 1]), grid: [gh, gw] };
};

export const backbone = (x: Tensor, spec: Backbone, trainGrid: readonly [number, number], train: boolean) =>
  x.graph.scope("backbone", (): Features => {
    switch (spec._tag) {
      case "ViT":
        return vit(x, spec, trainGrid, train);
      case "ConvNet":
        return convNet(x, spec);
      case "MobileNetV2":
        return mobileNetV2Tokens(x, spec);
    }
  });
