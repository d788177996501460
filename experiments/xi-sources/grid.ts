/**
 * ξ from image-level sources (issue 24 item 3): RankSeg's multi-label head ξ, an image-level classifier,
 * trained on ccp with the image-level labels of each source mix, judged by its mAP and recall@κ on ccp val.
 *
 * Every row is the same multi-label-only model (pretrained MobileNetV2, ξ = one transformer-encoder block
 * over pooled tokens and class embeddings, ASL; no pixel head, so no pixel loss for any image) with the same
 * 4 pixel-labelled ccp train images per batch, whose ξ target is the classes of their (cropped) masks;
 * rows differ in the image-level images added to each batch (ξ's loss is the only loss they enter):
 *
 * - `pixel`: none (batch 4): the pixel-derived labels only.
 * - `ccp-tags`: + 4 of ccp's 1,094 tagged photos (`complete`: the tags list every class present, so the
 *   other classes are negatives).
 * - `clothing`: + 4 of clothing/'s 1,870 single-label photos (`partial`: only the listed class is known;
 *   the other 58 classes are left out of the loss).
 * - `clothing-complete`: the same photos read as `complete` (the other 58 classes negatives): what the
 *   `partial` semantics changes.
 * - `both`: + 2 ccp tag photos + 2 clothing photos.
 *
 * κ = 16, the ccp LarvSeg grid's κ (about twice the classes of a typical ccp image).
 */
import { experiment, withImageLevelSources } from "../../dsl/experiment.ts";
import * as m from "../../dsl/model.ts";
import { adamWSpec, evalConfig, poly, trainConfig } from "../../dsl/training.ts";
import {
  folder,
  type ImageLevelData,
  imageLevelData,
  testPipeline,
  trainPipeline,
} from "../../dsl/dataset.ts";

export type Row = "pixel" | "ccp-tags" | "clothing" | "clothing-complete" | "both";
export const ROWS: readonly Row[] = ["pixel", "ccp-tags", "clothing", "clothing-complete", "both"];

const WEIGHTS = "../shared/weights/mobilenet_v2_1.0_224.safetensors";
const TAGS = "../shared/data/ccp/image-level/labels.json";
const CLOTHING = "../shared/data/clothing/labels.json";

/** κ of recall@κ. */
export const KAPPA = 16;
/** Pixel-labelled images per batch, in every row. */
export const PIXEL_IMAGES = 4;
/** Steps per run (a short run: the plateau grids are a later item). */
export const STEPS = 150;

/** The image-level sources of a row, with their share of a batch of 8. */
export const rowSources = (row: Row): readonly ImageLevelData[] => {
  const tags = (ratio: number) => imageLevelData({ labels: TAGS, ratio });
  const clothing = (ratio: number, semantics: "complete" | "partial" = "partial") =>
    imageLevelData({ labels: CLOTHING, ratio, semantics });
  switch (row) {
    case "pixel":
      return [];
    case "ccp-tags":
      return [tags(0.5)];
    case "clothing":
      return [clothing(0.5)];
    case "clothing-complete":
      return [clothing(0.5, "complete")];
    case "both":
      return [tags(0.25), clothing(0.25)];
  }
};

/**
 * A row: the pixel-derived-labels experiment (batch of `PIXEL_IMAGES`) with the row's sources mixed in by
 * `withImageLevelSources`, which adds them on top of whatever else an experiment sets, so that the mix
 * and another protocol's or a grid's overrides combine in either order.
 */
export const rowExperiment = (row: Row) =>
  withImageLevelSources(pixelExperiment(`xi-sources-ccp-${row}`), rowSources(row));

/** Every row's model, data and training, with the pixel-labelled images only. */
export const pixelExperiment = (name: string) => {
  const scaling = m.MINUS_ONE_TO_ONE;
  return experiment({
    name,
    model: m.segmenter({
      classes: 59,
      backbone: m.mobileNetV2({ pretrained: WEIGHTS, outputStride: 16 }),
      headDim: 128,
      xi: m.transformerEncoder({ pool: 4, heads: 2 }),
      psi: null,
      select: m.all(),
      temperature: m.noTemperature(),
      multiLabelLoss: m.asymmetricLoss({ weight: 1 }),
    }),
    data: {
      dataset: folder({ name: "ccp", root: "../shared/data/ccp", classes: "classes.json" }),
      train: trainPipeline({ scale: [320, 240], ratioRange: [0.75, 1.5], cropSize: [224, 160], ...scaling }),
      test: testPipeline({ resize: [320, 240], ...scaling }),
    },
    train: trainConfig({
      steps: STEPS,
      batchSize: PIXEL_IMAGES,
      // The LarvSeg grid's recipe: AdamW lr 1e-3, backbone ×0.1, poly with 20 warm-up steps.
      optimizer: adamWSpec({ lr: 1e-3, weightDecay: 0 }),
      paramGroups: [{ pattern: "^model\\.backbone\\.", lrMult: 0.1, wdMult: 1 }],
      schedule: poly({ warmupSteps: 20, minLr: 1e-5 }),
      logEvery: 10,
      evalEvery: 0,
      checkpointEvery: 100,
      keepCheckpoints: 1,
    }),
    eval: evalConfig({ examples: 0, recallAt: KAPPA }),
  });
};
