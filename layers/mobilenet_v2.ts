/**
 * MobileNetV2 (Sandler et al. 2018) as a backbone: an image batch [b, 3, H, W] → feature maps at
 * strides 4, 8, 16, 32 (and the final 1280-channel map), laid out exactly as torchvision's
 * `mobilenet_v2()` so that its ImageNet weights load by name (`weights/mobilenet_v2_names.ts`).
 *
 * Normalization: the BatchNorms are folded into the convolutions (`weights/fold_batch_norm.ts`), so each
 * conv carries a bias and there is no normalization layer: the pretrained statistics stay frozen, and
 * fine-tuning updates the folded weights and biases.
 *
 * Parameters, under the scope the caller opens (`backbone` for the name table): `stem.conv`,
 * `blocks.{i}.{expand,depthwise,project}.conv` for i = 1..17 (torchvision's `features.{i}`; block 1 has
 * no expand conv), `final.conv` (only when the final map is requested), each with `weight` [out, in/group,
 * k, k] and `bias` [out].
 */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { normal, zeros } from "../ir/init.ts";
import { makeDivisible, type MobileNetV2Output } from "../dsl/model.ts";

/** The feature maps a MobileNetV2 can return, by nominal stride: c2 = 4, c3 = 8, c4 = 16, c5 = 32. */

export interface MobileNetV2Options {
  /** Scales every width (torchvision's `width_mult`, default 1.0), rounded by `makeDivisible(·, 8)`. */
  readonly widthMultiplier: number;
  /**
   * The stride of the last stages (DeepLab): 32 is the classification network; 16 or 8 replace the
   * stride-2 blocks past that stride by stride 1 and dilate the later depthwise convs instead.
   */
  readonly outputStride: 8 | 16 | 32;
  /**
   * "same": TensorFlow SAME padding, a stride-2 conv of an even size pads only bottom and right (how the
   * provided ImageNet weights were trained); "symmetric": torchvision's (k − 1)/2 · dilation on every side.
   */
  readonly padding: "same" | "symmetric";
  /** Which maps to return: c2..c5 (the last block of each stride, 24/32/96/320 channels), "final" (1280). */
  readonly outputs: readonly MobileNetV2Output[];
}

export const MOBILENET_V2_DEFAULTS: MobileNetV2Options = {
  widthMultiplier: 1,
  outputStride: 32,
  padding: "same",
  outputs: ["c2", "c3", "c4", "c5"],
};

/** Inverted residual settings per group of blocks: expansion t, output channels c, repeats n, stride s. */
const INVERTED_RESIDUAL_SETTINGS: readonly { t: number; c: number; n: number; s: 1 | 2 }[] = [
  { t: 1, c: 16, n: 1, s: 1 },
  { t: 6, c: 24, n: 2, s: 2 },
  { t: 6, c: 32, n: 3, s: 2 },
  { t: 6, c: 64, n: 4, s: 2 },
  { t: 6, c: 96, n: 3, s: 1 },
  { t: 6, c: 160, n: 3, s: 2 },
  { t: 6, c: 320, n: 1, s: 1 },
];

/** The block (torchvision `features.{i}`) whose output is each stage's feature map. */
const STAGE_ENDS: Record<Exclude<MobileNetV2Output, "final">, number> = { c2: 3, c3: 6, c4: 13, c5: 17 };

/** The convolution's input pads [top, left, bottom, right] under the layer's padding convention. */
export const convPads = (
  padding: "same" | "symmetric",
  size: readonly [number, number],
  kernel: number,
  stride: number,
  dilation: number,
): [number, number, number, number] => {
  if (padding === "same") return o.samePads(size, [kernel, kernel], [stride, stride], [dilation, dilation]);
  const pad = Math.floor((kernel - 1) / 2) * dilation;
  return [pad, pad, pad, pad];
};

interface ConvUnit {
  readonly out: number;
  readonly kernel: 1 | 3;
  readonly stride?: number;
  readonly dilation?: number;
  /** Groups: the input channel count for a depthwise conv. */
  readonly group?: number;
  readonly relu6: boolean;
}

/** Conv (with its folded BatchNorm as a bias), then ReLU6 unless it is a linear projection. */
const convUnit = (x: Tensor, name: string, padding: "same" | "symmetric", unit: ConvUnit): Tensor =>
  x.graph.scope(name, () =>
    x.graph.scope("conv", () => {
      const { out, kernel, stride = 1, dilation = 1, group = 1 } = unit;
      const [, cin, h, w] = x.shape;
      // torchvision's init: He normal with fan-out (out · k · k), biases zero.
      const weight = o.variable(
        x.graph,
        "weight",
        [out, cin / group, kernel, kernel],
        normal(Math.sqrt(2 / (out * kernel * kernel))),
      );
      const bias = o.variable(x.graph, "bias", [out], zeros);
      const y = o.conv(x, weight, {
        strides: [stride, stride],
        dilations: [dilation, dilation],
        pads: convPads(padding, [h, w], kernel, stride, dilation),
        group,
        bias,
      });
      return unit.relu6 ? o.relu6(y) : y;
    }));

/**
 * An inverted residual block: expand 1×1 → ReLU6, depthwise 3×3 → ReLU6, project 1×1 (linear); the input
 * is added back when the block keeps stride 1 and its width.
 */
const invertedResidual = (
  x: Tensor,
  { out, expansion, stride, dilation, padding }: {
    out: number;
    expansion: number;
    stride: number;
    dilation: number;
    padding: "same" | "symmetric";
  },
): Tensor => {
  const cin = x.shape[1];
  const hidden = Math.round(cin * expansion);
  const expanded = expansion === 1
    ? x
    : convUnit(x, "expand", padding, { out: hidden, kernel: 1, relu6: true });
  const depthwise = convUnit(expanded, "depthwise", padding, {
    out: hidden,
    kernel: 3,
    stride,
    dilation,
    group: hidden,
    relu6: true,
  });
  const projected = convUnit(depthwise, "project", padding, { out, kernel: 1, relu6: false });
  return stride === 1 && cin === out ? o.add(x, projected) : projected;
};

/**
 * MobileNetV2 over an NCHW image batch; returns the requested feature maps. Call it inside the scope
 * its parameters should live under (`backbone` for the torchvision name table).
 */
export const mobileNetV2 = (
  x: Tensor,
  { widthMultiplier, outputStride, padding, outputs }: MobileNetV2Options,
): Partial<Record<MobileNetV2Output, Tensor>> => {
  const g = x.graph;
  const features: Partial<Record<MobileNetV2Output, Tensor>> = {};
  let h = convUnit(x, "stem", padding, {
    out: makeDivisible(32 * widthMultiplier),
    kernel: 3,
    stride: 2,
    relu6: true,
  });
  let stride = 2, dilation = 1, index = 1;
  const last = Math.max(...outputs.map((name) => (name === "final" ? 18 : STAGE_ENDS[name])));
  for (const { t, c, n, s } of INVERTED_RESIDUAL_SETTINGS) {
    for (let r = 0; r < n && index <= last; r++, index++) {
      const wantsStride = r === 0 ? s : 1;
      // DeepLab: past the output stride a downsampling block keeps the resolution, and every later
      // depthwise conv dilates by the stride it gave up.
      const keepsResolution = wantsStride > 1 && stride === outputStride;
      const blockStride = keepsResolution ? 1 : wantsStride, blockDilation = dilation;
      if (keepsResolution) dilation *= wantsStride;
      else stride *= wantsStride;
      h = g.scope("blocks", () =>
        g.scope(index, () =>
          invertedResidual(h, {
            out: makeDivisible(c * widthMultiplier),
            expansion: t,
            stride: blockStride,
            dilation: blockDilation,
            padding,
          })));
      for (const name of ["c2", "c3", "c4", "c5"] as const) {
        if (STAGE_ENDS[name] === index && outputs.includes(name)) features[name] = h;
      }
    }
  }
  if (outputs.includes("final")) {
    h = convUnit(h, "final", padding, {
      out: makeDivisible(1280 * Math.max(1, widthMultiplier)),
      kernel: 1,
      relu6: true,
    });
    features.final = h;
  }
  return features;
};
