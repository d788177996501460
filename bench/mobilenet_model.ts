/**
 * The MobileNetV2 model of `deno task bench perf --model=mobilenet` (issue 12): the RankSeg pretrained
 * grid's "+MT+LS+RA" row on coco133 (`experiments/rankseg-pretrained/grid.ts` `rowModel`: ImageNet
 * MobileNetV2 width 1, output stride 16, TF-SAME padding, folded BatchNorm, ReLU6; head width 128, ξ =
 * transformer encoder, top-κ = 25 of K = 133, ψ = mask transformer, rank-adaptive τ, asymmetric loss),
 * at a square 224×224 crop (ImageNet's size; the grid trains 176×240 crops) and batch 4, trained with SGD
 * momentum like the ViT perf model. The backbone starts from the provided ImageNet weights
 * (`../shared/weights/mobilenet_v2_1.0_224.safetensors`, through kappa's importer); the heads from the
 * seeded initialization. The peer (bench/peer/segmenter_mobilenet.py) rebuilds the same graph in PyTorch
 * from the file `mobileNetPeerInputs` writes.
 */
import { Effect } from "effect";
import { type Graph, pretrainedValues, type Value, value } from "../mod.ts";
import { liveNodes, type Prim, type Rule, RULES } from "../profiling.ts";
import { rowModel } from "../experiments/rankseg-pretrained/grid.ts";
import { headConfig, peerInputs, type PerfModel } from "./segmenter_model.ts";
import type { FlopSplit } from "./perf_mobilenet_report.ts";

/** The grid row the bench measures, and the dataset whose K and κ it takes. */
export const MOBILENET_ROW = { dataset: "coco133", row: "mt-ls-ra" } as const;

export const MOBILENET_MODEL: PerfModel = {
  spec: rowModel(MOBILENET_ROW.dataset, MOBILENET_ROW.row),
  size: 224,
  batch: 4,
  lr: 1e-3,
  momentum: 0.9,
};

/**
 * `state` with the backbone's parameters replaced by the pretrained file's (what a fresh training run
 * starts from); fails like training does when the file does not fit.
 */
export const withPretrained = async (
  pm: PerfModel,
  g: Graph,
  state: ReadonlyMap<string, Value>,
): Promise<Map<string, Value>> => {
  const pretrained = await Effect.runPromise(pretrainedValues(pm.spec, g));
  if (pretrained.size === 0) throw new Error("bench perf: the MobileNetV2 model has no pretrained file");
  const out = new Map(state);
  for (const [name, v] of pretrained) out.set(name, value("float32", v.data, v.shape));
  return out;
};

/** What the peer needs besides the tensors: the heads' settings (as the ViT model's) and the backbone's. */
export const mobileNetPeerConfig = (pm: PerfModel) => {
  const b = pm.spec.backbone;
  if (b._tag !== "MobileNetV2" || b.outputs.length !== 1 || b.outputs[0] !== "c5") {
    throw new Error("bench perf: the MobileNetV2 peer reads the backbone's c5 map only");
  }
  return {
    ...headConfig(pm),
    backbone: {
      kind: "MobileNetV2",
      widthMultiplier: b.widthMultiplier,
      outputStride: b.outputStride,
      padding: b.padding,
    },
  };
};

/** The peer's input file: our initial parameters (pretrained backbone), the batch, and the settings. */
export const mobileNetPeerInputs = (pm: PerfModel, g: Graph, state: ReadonlyMap<string, Value>): Uint8Array =>
  peerInputs(pm, g, state, undefined, mobileNetPeerConfig(pm));

/** A graph's FLOPs by kind (`liveNodes` from its outputs, the per-op rules' counts). */
export const flopSplit = (g: Graph): FlopSplit => {
  let total = 0, matmul = 0, conv = 0, depthwise = 0;
  for (const n of liveNodes(g, [...g.outputs.values()])) {
    const flops = (RULES[n.prim.op] as unknown as Rule<Prim>).flops(n.prim, n.outputs);
    total += flops;
    if (n.prim.op === "matmul") matmul += flops;
    else if (n.prim.op === "conv" || n.prim.op === "convTranspose") {
      // A depthwise conv has one group per input channel (a convTranspose: per output channel).
      const channels = n.prim.op === "conv" ? n.prim.x.shape[1] : n.outputs[0].shape[1];
      if (n.prim.group > 1 && n.prim.group === channels) depthwise += flops;
      else conv += flops;
    }
  }
  return { total, matmul, conv, depthwise };
};
