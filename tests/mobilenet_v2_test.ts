/**
 * The MobileNetV2 layer: torchvision's widths and parameters, TensorFlow's SAME pads, DeepLab's output
 * strides, and the importer's refusal of a checkpoint of another width. (The provided ImageNet weights
 * classifying the check images through `deno task classify` is tests/pretrained_test.ts.)
 */
import { Effect } from "effect";
import { assert, assertEquals } from "./assert.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { convPads, mobileNetV2 } from "../layers/mobilenet_v2.ts";
import { classifier, makeDivisible, mobileNetV2 as mobileNetV2Spec } from "../dsl/model.ts";
import { inferenceGraph } from "../interpret/graphs.ts";
import { importWeights } from "../weights/import.ts";
import { MOBILENET_V2_TORCHVISION } from "../weights/mobilenet_v2_names.ts";
import { WEIGHTS } from "./fixtures/imagenet_check.ts";

const SIZE = 224;

/** The parameter shapes of an ImageNet classifier on the layer (paths under the model scope). */
const classifierParameters = () => {
  const model = classifier({
    classes: 1000,
    backbone: mobileNetV2Spec({ outputStride: 32, outputs: ["final"] }),
  });
  const g = inferenceGraph(model, { batch: 1, height: SIZE, width: SIZE, trainSize: [SIZE, SIZE] });
  return new Map(
    g.nodes.flatMap((n) => n.prim.op === "variable" ? [[n.prim.name, n.prim.shape] as const] : []),
  );
};

Deno.test("MobileNetV2 widths and SAME pads follow torchvision and TensorFlow", () => {
  assertEquals([32, 16, 24, 1280].map((c) => makeDivisible(c * 1)), [32, 16, 24, 1280]);
  // Width 0.35: 32·0.35 = 11.2 → 16 (8 would be more than 10 % below), 24·0.35 = 8.4 → 8.
  assertEquals([makeDivisible(32 * 0.35), makeDivisible(24 * 0.35)], [16, 8]);
  // SAME, 3×3 stride 2 on 224: (112 − 1)·2 + 3 − 224 = 1 row and column of padding, all at the end.
  assertEquals(convPads("same", [224, 224], 3, 2, 1), [0, 0, 1, 1]);
  assertEquals(convPads("same", [7, 7], 3, 2, 1), [1, 1, 1, 1]);
  assertEquals(convPads("same", [28, 28], 3, 1, 2), [2, 2, 2, 2]);
  assertEquals(convPads("symmetric", [224, 224], 3, 2, 1), [1, 1, 1, 1]);
  const parameters = classifierParameters();
  // torchvision counts 3,504,872 parameters, BatchNorm's γ and β of 17,056 channels included; folded,
  // one bias per channel remains.
  const count = [...parameters.values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
  assertEquals(count, 3_504_872 - 17_056);
});

const build = (outputStride: 8 | 16 | 32) => {
  const g = new Graph("mobilenet_v2");
  const x = o.input(g, "image", [1, 3, SIZE, SIZE]);
  const features = g.scope(
    "backbone",
    () =>
      mobileNetV2(x, {
        widthMultiplier: 1,
        outputStride,
        padding: "same",
        outputs: ["c2", "c3", "c4", "c5", "final"],
      }),
  );
  const dilation = (block: number) => {
    const node = g.nodes.find((n) =>
      n.prim.op === "conv" && n.scope === `backbone.blocks.${block}.depthwise.conv`
    )!;
    return node.prim.op === "conv" ? node.prim.dilations[0] : 0;
  };
  const parameters = g.nodes.flatMap((n) => n.prim.op === "variable" ? [[n.prim.name, n.prim.shape]] : []);
  return { features, dilation, parameters };
};

Deno.test("MobileNetV2 stage maps and DeepLab output strides: dilation replaces the later strides", () => {
  const shapes = (os: 8 | 16 | 32) =>
    Object.fromEntries(Object.entries(build(os).features).map(([k, t]) => [k, t!.shape]));
  assertEquals(shapes(32), {
    c2: [1, 24, 56, 56],
    c3: [1, 32, 28, 28],
    c4: [1, 96, 14, 14],
    c5: [1, 320, 7, 7],
    final: [1, 1280, 7, 7],
  });
  assertEquals(shapes(16), {
    c2: [1, 24, 56, 56],
    c3: [1, 32, 28, 28],
    c4: [1, 96, 14, 14],
    c5: [1, 320, 14, 14],
    final: [1, 1280, 14, 14],
  });
  assertEquals(shapes(8).c5, [1, 320, 28, 28]);
  // Output stride 8: block 7 (the first of stride 16) keeps stride 1 at dilation 1, blocks 8–14 dilate by
  // 2 (block 14 being the next stride it gives up), blocks 15–17 by 4.
  const os8 = build(8);
  assertEquals([6, 7, 8, 13, 14, 15, 17].map(os8.dilation), [1, 1, 2, 2, 2, 4, 4]);
  // The same parameters at every output stride, so the ImageNet weights load into each.
  assertEquals(build(16).parameters, build(32).parameters);
  assertEquals(os8.parameters, build(32).parameters);
});

Deno.test("a width-0.5 MobileNetV2 refuses the width-1.0 weights, every tensor named with both shapes", async () => {
  const g = new Graph("mobilenet_v2_half");
  const x = o.input(g, "image", [1, 3, SIZE, SIZE]);
  g.scope(
    "backbone",
    () => mobileNetV2(x, { widthMultiplier: 0.5, outputStride: 32, padding: "same", outputs: ["final"] }),
  );
  const shapes = new Map<string, readonly number[]>();
  for (const node of g.nodes) if (node.prim.op === "variable") shapes.set(node.prim.name, node.prim.shape);
  const e = await Effect.runPromise(
    Effect.flip(importWeights(WEIGHTS, MOBILENET_V2_TORCHVISION, shapes, { unused: ["classifier."] })),
  );
  assertEquals(
    e.problems[0],
    "features.0.0.weight: shape [32,3,3,3] in the file, [16,3,3,3] expected for backbone.stem.conv.weight",
  );
  // All but features.18's input width (320 · 0.5 = 160 channels, 1280 output kept) differ, so nearly
  // every tensor is listed: 52 convs and their 4 BatchNorm vectors, less the 4 vectors of features.18.
  assertEquals(e.problems.length, 52 * 5 - 4);
  assert(
    e.message.startsWith(`${WEIGHTS}: does not fit the model as torchvision MobileNetV2 (256 problems):`),
  );
});
