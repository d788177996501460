/**
 * The describe interpreter: parameters and forward GFLOPs per component of a model, like the
 * papers' "#params / FLOPs" columns, for one image at the training crop size.
 */
import type { Model } from "../dsl/model.ts";
import { inferenceGraph } from "./graphs.ts";
import { describe } from "../ir/describe.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { panopticForward } from "../layers/panoptic.ts";

export interface ComponentCost {
  readonly component: string;
  readonly params: number;
  readonly gflops: number;
}

export interface ModelDescription {
  readonly input: readonly [number, number];
  readonly components: readonly ComponentCost[];
}

const COMPONENTS: [string, RegExp][] = [
  ["backbone", /^model\.backbone/],
  ["neck (pixel token projection)", /^model\.proj/],
  ["ξ (multi-label head)", /^model\.xi/],
  ["ψ (pixel head) + τ", /^model\.(psi|temperature)/],
  // The panoptic mask transformer's parts, in kMaX's names.
  ["pixel decoder", /^model\.pixelDecoder/],
  ["transformer decoder (N queries)", /^model\.transformerDecoder/],
  ["class head (K + 1)", /^model\.classHead/],
  ["mask embeddings · pixel embeddings", /^model\.(maskEmbeddingHead|pixelEmbeddingHead)/],
  ["RankSeg multi-label head", /^model\.rankSegHead/],
];

/** Costs per component; "other" holds upsampling, argmax and the scatter back to K classes. */
export const describeModel = (
  spec: Model,
  [height, width]: readonly [number, number],
): ModelDescription => {
  const g = inferenceGraph(spec, { batch: 1, height, width, trainSize: [height, width] });
  const rows = describe(g, { depth: 8 });
  const total = rows.pop()!;
  const sums = new Map<string, { params: number; flops: number }>();
  for (const r of rows) {
    const name = COMPONENTS.find(([, re]) => re.test(r.scope))?.[0] ?? "other";
    const s = sums.get(name) ?? { params: 0, flops: 0 };
    sums.set(name, { params: s.params + r.params, flops: s.flops + r.flops });
  }
  const components = [...COMPONENTS.map(([n]) => n), "other"]
    .filter((n) => sums.has(n))
    .map((n) => ({ component: n, params: sums.get(n)!.params, gflops: sums.get(n)!.flops / 1e9 }));
  return {
    input: [height, width],
    components: [
      ...components,
      { component: "total", params: total.params, gflops: total.flops / 1e9 },
      ...trainingOnly(spec, [height, width]),
    ],
  };
};

/**
 * Parts that exist only in training, listed after the total (which is the inference graph's): the panoptic
 * model's auxiliary semantic head.
 */
const trainingOnly = (spec: Model, [height, width]: readonly [number, number]): ComponentCost[] => {
  if (spec._tag !== "PanopticSegmenter") return [];
  const g = new Graph("train");
  const images = o.input(g, "images", [1, 3, height, width]);
  const out = g.scope("model", () => panopticForward(spec, images, { mode: "train" }));
  g.output("semantic", out.semanticLogits!);
  const head = describe(g, { depth: 8 }).filter((r) => /^model\.semanticHead/.test(r.scope));
  return [{
    component: "aux. semantic head (training only)",
    params: head.reduce((a, r) => a + r.params, 0),
    gflops: head.reduce((a, r) => a + r.flops, 0) / 1e9,
  }];
};

export const formatDescription = (name: string, d: ModelDescription): string => {
  const lines = [
    `${name}: one ${d.input[0]}×${d.input[1]} image, forward pass (GFLOPs count 2 per multiply-add)`,
    `${"component".padEnd(32)}${"params".padStart(14)}${"GFLOPs".padStart(12)}`,
  ];
  for (const c of d.components) {
    if (c.component === "total") lines.push("-".repeat(58));
    lines.push(
      `${c.component.padEnd(32)}${c.params.toLocaleString("en-US").padStart(14)}${
        c.gflops.toFixed(3).padStart(12)
      }`,
    );
  }
  return lines.join("\n");
};
