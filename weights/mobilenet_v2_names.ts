/**
 * torchvision's MobileNetV2 state dict → the parameters of `layers/mobilenet_v2.ts`.
 *
 * torchvision numbers the network `features.0` (stem conv) … `features.17` (inverted residual blocks)
 * and `features.18` (the final 1×1 conv to 1280 channels), then `classifier.1` (dropout is
 * `classifier.0`). kappa keeps those numbers for the blocks (`backbone.blocks.{i}` = `features.{i}`,
 * i = 1..17) so that any weight can be found in the source by the same index. A block with expansion 1
 * (`features.1`) has no expand conv, so its depthwise and project convs sit one module earlier in the
 * source; its rules come before the general ones.
 */
import type { NameTable } from "./name_table.ts";

export const MOBILENET_V2_TORCHVISION: NameTable = {
  name: "torchvision MobileNetV2",
  rules: [
    { kind: "convBatchNorm", to: "backbone.stem.conv", conv: "features.0.0", batchNorm: "features.0.1" },
    {
      kind: "convBatchNorm",
      to: "backbone.blocks.1.depthwise.conv",
      conv: "features.1.conv.0.0",
      batchNorm: "features.1.conv.0.1",
    },
    {
      kind: "convBatchNorm",
      to: "backbone.blocks.1.project.conv",
      conv: "features.1.conv.1",
      batchNorm: "features.1.conv.2",
    },
    {
      kind: "convBatchNorm",
      to: "backbone.blocks.{i}.expand.conv",
      conv: "features.{i}.conv.0.0",
      batchNorm: "features.{i}.conv.0.1",
    },
    {
      kind: "convBatchNorm",
      to: "backbone.blocks.{i}.depthwise.conv",
      conv: "features.{i}.conv.1.0",
      batchNorm: "features.{i}.conv.1.1",
    },
    {
      kind: "convBatchNorm",
      to: "backbone.blocks.{i}.project.conv",
      conv: "features.{i}.conv.2",
      batchNorm: "features.{i}.conv.3",
    },
    { kind: "convBatchNorm", to: "backbone.final.conv", conv: "features.18.0", batchNorm: "features.18.1" },
    { kind: "linear", to: "classifier", linear: "classifier.1" },
  ],
};
