/**
 * The model of `deno task bench perf`: a Segmenter + RankSeg (ViT-Tiny width, ξ transformer encoder,
 * top-κ, ψ mask transformer, rank-adaptive τ, asymmetric multi-label loss) trained with SGD momentum,
 * its fixed batch, and the file that hands our initial parameters and the batch to the PyTorch peer
 * (bench/peer/segmenter.py), which rebuilds the same model from it.
 */
import {
  camvid,
  evalConfig,
  type Experiment,
  experiment,
  type Graph,
  sgd,
  sgdSpec,
  type Shapes,
  testPipeline,
  trainConfig,
  trainingGraph,
  trainPipeline,
  type Value,
  value,
} from "../mod.ts";
import { encodeSafetensors, parameters, random, type StoredTensor } from "../profiling.ts";
import * as m from "../mod.ts";

export interface PerfModel {
  readonly spec: m.Segmenter;
  /** Square input side (pixels) and the batch of a training step. */
  readonly size: number;
  readonly batch: number;
  readonly lr: number;
  readonly momentum: number;
}

/**
 * ViT-Tiny width and heads (d = 192, 3 heads) at depth 12, 256×256 input (a 16×16 token grid), batch 4:
 * a step takes about a second on one core, long enough to time and short enough for several rounds.
 */
export const PERF_MODEL: PerfModel = {
  spec: m.segmenter({
    classes: 150,
    backbone: m.vitTiny(),
    xi: m.transformerEncoder({ pool: 8, heads: 3 }),
    psi: m.maskTransformer({ layers: 2, heads: 3 }),
    select: m.topK(50),
    temperature: m.rankAdaptive(),
    multiLabelLoss: m.asymmetricLoss(),
  }),
  size: 256,
  batch: 4,
  lr: 0.01,
  momentum: 0.9,
};

export const shapesOf = (pm: PerfModel, batch = pm.batch): Shapes => ({
  batch,
  height: pm.size,
  width: pm.size,
  trainSize: [pm.size, pm.size],
});

/** The training graph: forward, losses, backward and the SGD-momentum update (no weight decay). */
export const perfTrainingGraph = (pm: PerfModel): Graph =>
  trainingGraph(pm.spec, shapesOf(pm), { optimizer: sgd({ momentum: pm.momentum }) });

/** An experiment around the model, for `exportModel` (it reads the crop size from the data config). */
export const perfExperiment = (pm: PerfModel): Experiment =>
  experiment({
    name: "bench-perf",
    model: pm.spec,
    data: {
      dataset: camvid,
      train: trainPipeline({ cropSize: [pm.size, pm.size] }),
      test: testPipeline({}),
    },
    train: trainConfig({
      steps: 1,
      batchSize: pm.batch,
      optimizer: sgdSpec({ lr: pm.lr, momentum: pm.momentum }),
    }),
    eval: evalConfig({}),
  });

export interface Batch {
  /** [b, 3, H, W], standard normal (a normalized image's statistics). */
  readonly images: Float32Array;
  /** [b, H, W] class ids, with ignored pixels. */
  readonly labels: Int32Array;
}

/**
 * A batch with the structure of a segmentation label map: each image is a grid of 16×16-pixel cells,
 * each cell one of a handful of classes drawn for that image, a few cells ignored; images are noise.
 * Few classes per image make ξ's targets sparse, as in real data.
 */
export const syntheticBatch = (
  { classes, ignoreIndex }: Pick<m.Segmenter, "classes" | "ignoreIndex">,
  batch: number,
  [height, width]: readonly [number, number],
  seed = 7,
): Batch => {
  const rng = random(seed);
  const images = Float32Array.from({ length: batch * 3 * height * width }, () => rng.normal());
  const labels = new Int32Array(batch * height * width);
  const cell = 16, cellsAcross = Math.ceil(width / cell), cellsDown = Math.ceil(height / cell);
  for (let b = 0; b < batch; b++) {
    const palette = Array.from({ length: 6 }, () => rng.int(classes));
    const grid = Array.from(
      { length: cellsDown * cellsAcross },
      () => (rng.uniform() < 0.1 ? ignoreIndex : palette[rng.int(palette.length)]),
    );
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        labels[(b * height + y) * width + x] =
          grid[Math.floor(y / cell) * cellsAcross + Math.floor(x / cell)];
      }
    }
  }
  return { images, labels };
};

/** The perf model's fixed training batch. */
export const perfBatch = (pm: PerfModel): Batch => syntheticBatch(pm.spec, pm.batch, [pm.size, pm.size]);

/** The feeds of one training step on `data` ([b, 3, height, width] images), at learning rate `lr`. */
export const trainingFeeds = (
  data: Batch,
  [height, width]: readonly [number, number],
  lr: number,
): Record<string, Value> => {
  const b = data.labels.length / (height * width);
  return {
    images: value("float32", data.images, [b, 3, height, width]),
    labels: value("int32", data.labels, [b, height, width]),
    lr: value("float32", Float32Array.of(lr), []),
    step: value("float32", Float32Array.of(1), []),
  };
};

/** The feeds of one training step of the perf model on its fixed batch. */
export const perfFeeds = (pm: PerfModel): Record<string, Value> =>
  trainingFeeds(perfBatch(pm), [pm.size, pm.size], pm.lr);

/**
 * The peer's input file: our initial parameters by name (linear weights [in, out], as we store them),
 * the training batch, one image for inference, and the model's settings as metadata.
 */
export const peerInputs = (
  pm: PerfModel,
  g: Graph,
  state: ReadonlyMap<string, Value>,
  data: Batch = perfBatch(pm),
  config: object = peerConfig(pm),
): Uint8Array => {
  const { size, batch } = pm;
  const tensors: Record<string, StoredTensor> = {
    images: { dtype: "F32", shape: [batch, 3, size, size], data: data.images },
    labels: { dtype: "I32", shape: [batch, size, size], data: data.labels },
  };
  for (const p of parameters(g)) {
    const prim = g.producer(p).prim;
    if (prim.op !== "variable") continue;
    const v = state.get(prim.name)!;
    tensors[prim.name] = { dtype: "F32", shape: [...v.dims], data: v.data as Float32Array };
  }
  return encodeSafetensors(tensors, { config: JSON.stringify(config) });
};

/** What the peer needs to know besides the tensors (it checks the tensor shapes against it). */
export const peerConfig = (pm: PerfModel) => {
  const { spec } = pm;
  if (spec.backbone._tag !== "ViT") {
    throw new Error("bench perf: the peer implements a ViT backbone with a transformer-encoder ξ");
  }
  return {
    ...headConfig(pm),
    patch: spec.backbone.patchSize,
    dim: spec.backbone.dim,
    depth: spec.backbone.depth,
    heads: spec.backbone.heads,
    mlpRatio: spec.backbone.mlpRatio,
    backboneEps: spec.backbone.epsilon,
  };
};

/** The settings of everything after the backbone (ξ, selection, ψ, τ, losses) and of the optimizer. */
export const headConfig = (pm: PerfModel) => {
  const { spec } = pm;
  if (spec.xi?._tag !== "TransformerEncoder") {
    throw new Error("bench perf: the peer implements a transformer-encoder ξ");
  }
  if (spec.psi?._tag !== "MaskTransformer" || spec.select._tag !== "TopK") {
    throw new Error("bench perf: the peer implements a mask-transformer ψ over the top-κ classes");
  }
  if (spec.temperature._tag !== "RankAdaptive" || spec.multiLabelLoss?._tag !== "Asymmetric") {
    throw new Error("bench perf: the peer implements rank-adaptive τ and the asymmetric loss");
  }
  const asl = spec.multiLabelLoss;
  return {
    classes: spec.classes,
    ignoreIndex: spec.ignoreIndex,
    size: pm.size,
    headDim: spec.headDim,
    xi: { pool: spec.xi.pool, heads: spec.xi.heads, mlpRatio: spec.xi.mlpRatio },
    psi: { layers: spec.psi.layers, heads: spec.psi.heads, mlpRatio: spec.psi.mlpRatio },
    kappa: spec.select.k,
    pixelLossWeight: spec.pixelLossWeight,
    asl: {
      weight: asl.weight,
      gammaPos: asl.gammaPos,
      gammaNeg: asl.gammaNeg,
      clip: asl.clip,
      eps: asl.eps,
      detachFocusing: asl.detachFocusing,
    },
    lr: pm.lr,
    momentum: pm.momentum,
  };
};
