/**
 * A backbone with a classification head: global average pooling of the backbone's last feature map,
 * then one linear layer to the class logits (torchvision's MobileNetV2 classifier without its dropout,
 * which is inactive at inference). Parameters: `backbone.*`, `classifier.{weight,bias}`.
 */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import type { Classifier } from "../dsl/model.ts";
import { backbone } from "./backbone.ts";
import { linear } from "./linear.ts";

/** Class logits [b, classes] of images [b, 3, H, W]; `trainGrid` as for the backbone (ViT positions). */
export const classifierForward = (
  spec: Classifier,
  images: Tensor,
  { trainGrid, train }: { trainGrid: readonly [number, number]; train: boolean },
): Tensor => {
  const { tokens } = backbone(images, spec.backbone, trainGrid, train); // [b, h·w, d]
  const pooled = o.mean(tokens, [1]); // [b, d]
  return linear(pooled, spec.classes, { name: "classifier" });
};
