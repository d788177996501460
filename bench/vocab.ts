/**
 * Vocabulary scaling: inference time and peak memory of the segmentation head alone — pixel tokens in,
 * logits at the feature grid out (ξ, selection, ψ, τ; `segmenterHead`) — as the number of classes K
 * grows, for RankSeg (top-κ, ψ over κ class tokens) and a full-K pixel classifier (ψ = per-pixel
 * linear over every class).
 *
 * Each configuration runs in its own Deno process (bench/vocab_child.ts) on an ONNX file with the
 * parameters embedded, so its peak RSS (the kernel's VmHWM) is that configuration's alone.
 */
import { fileURLToPath } from "node:url";
import { Graph, ops as o } from "../mod.ts";
import {
  type HostArray,
  initialize,
  liveNodes,
  type Prim,
  type Rule,
  RULES,
  segmenterHead,
  toOnnx,
} from "../profiling.ts";
import * as m from "../mod.ts";
import type { Repeats } from "./measure.ts";

/** The vocabulary sizes: ADE20K's 150 and ADE20K-Full's 847 classes up to ImageNet-21k's 21,841. */
export const VOCABULARY = [150, 847, 1284, 21841] as const;
export const KAPPA = 100;

export type HeadVariant = "ranksegGap" | "ranksegEncoder" | "fullK";

export const HEAD_VARIANTS: readonly HeadVariant[] = ["ranksegGap", "ranksegEncoder", "fullK"];

export const VARIANT_LABEL: Record<HeadVariant, string> = {
  ranksegGap: "RankSeg, ξ = GAP + linear",
  ranksegEncoder: "RankSeg, ξ = transformer encoder",
  fullK: "full-K pixel classifier",
};

/**
 * ξ's transformer encoder attends over pool² + K tokens: O(K²) time and memory (two heads of
 * 21,905² scores are 3.8 GB), so that variant stops here; the GAP ξ keeps RankSeg's cost flat.
 */
export const ENCODER_MAX_CLASSES = 1284;

export interface HeadSetting {
  /** Width of the pixel tokens and of ψ (ViT-Tiny: 192), on a grid × grid token grid (256² / 16²). */
  readonly dim: number;
  readonly grid: number;
}

export const HEAD_SETTING: HeadSetting = { dim: 192, grid: 16 };

/** The segmenter spec of one configuration (only its head is traced). */
export const headSpec = (variant: HeadVariant, classes: number): m.Segmenter => {
  const backbone = m.vitTiny();
  switch (variant) {
    case "ranksegGap":
    case "ranksegEncoder":
      return m.segmenter({
        classes,
        backbone,
        xi: variant === "ranksegGap" ? m.gapLinear() : m.transformerEncoder({ pool: 8, heads: 3 }),
        psi: m.maskTransformer({ layers: 2, heads: 3 }),
        select: m.topK(KAPPA),
        temperature: m.rankAdaptive(),
      });
    case "fullK":
      return m.segmenter({
        classes,
        backbone,
        xi: null,
        psi: m.linearPsi(),
        select: m.all(),
        temperature: m.shared(),
      });
  }
};

/** Input `pixels` [1, grid², dim]; output `logits` [1, κ or K, grid, grid]. */
export const headGraph = (spec: m.Segmenter, s: HeadSetting = HEAD_SETTING): Graph => {
  const g = new Graph("head");
  const pixels = o.input(g, "pixels", [1, s.grid * s.grid, s.dim]);
  const out = g.scope("model", () => segmenterHead(spec, pixels, [s.grid, s.grid], { mode: "eval" }));
  g.output("logits", out.logits!);
  return g;
};

export interface HeadModel {
  /** The ONNX model with every parameter embedded. */
  readonly bytes: Uint8Array;
  readonly params: number;
  /** Forward FLOPs (2 per multiply-add), as `describe` counts them. */
  readonly flops: number;
}

const ruleOf = (prim: Prim) => RULES[prim.op] as unknown as Rule<Prim>;

/** The head of one configuration as a self-contained ONNX model, parameters drawn from `seed`. */
export const headModel = (variant: HeadVariant, classes: number, seed = 0): HeadModel => {
  const g = headGraph(headSpec(variant, classes));
  const nodes = liveNodes(g, [...g.outputs.values()]);
  const state = new Map<string, HostArray>();
  let params = 0, flops = 0;
  for (const n of nodes) {
    const p = n.prim;
    if (p.op === "variable") {
      state.set(p.name, initialize(p.init, p.name, p.dtype, p.shape, seed));
      params += p.shape.reduce((a, b) => a * b, 1);
    } else flops += ruleOf(p).flops(p, n.outputs);
  }
  return { bytes: toOnnx(g, { initializers: state }).bytes, params, flops };
};

/** What a child process measured for one configuration. */
export interface HeadRun {
  readonly ms: readonly number[];
  /** VmHWM at the end: the process's peak resident memory. */
  readonly peakRssKiB: number;
  /** VmRSS just before the session was created (Deno, ONNX Runtime and the model file loaded). */
  readonly rssBeforeSessionKiB: number;
}

const CHILD = fileURLToPath(new URL("./vocab_child.ts", import.meta.url));

/** Runs the head in `modelFile` in a fresh Deno process at `threads` intra-op threads. */
export const runHeadChild = async (
  modelFile: string,
  threads: number,
  repeats: Repeats,
  s: HeadSetting = HEAD_SETTING,
): Promise<HeadRun> => {
  const request = { model: modelFile, dims: [1, s.grid * s.grid, s.dim], threads, ...repeats };
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, JSON.stringify(request)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`vocab child failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
  }
  return JSON.parse(text.trim().split("\n").at(-1)!) as HeadRun;
};
