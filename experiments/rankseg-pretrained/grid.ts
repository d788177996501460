/**
 * The RankSeg ablation grid on an ImageNet-pretrained MobileNetV2 (issue 12): the from-scratch grid's rows
 * (`../rankseg/grid.ts`, kept as the control) rerun where ξ can rank well, on coco133 (133 classes, 6.5 per
 * image) and ccp (Clothing Co-Parsing: 59 classes, 8.2 per image).
 *
 * Every row shares the backbone (MobileNetV2 width 1, output stride 16, the provided ImageNet weights, input
 * scaled to [−1, 1], backbone learning rate × 0.1 as the papers fine-tune), the mask-transformer ψ of the
 * paper's Table 1 at the control's head width (128), the data pipeline, the step budget and the seeds; rows differ only in the parts the
 * paper ablates. Each row has its own checked-in spec module next to this file (`<dataset>-<row>.ts`),
 * which is what `deno task grid ablation --grid pretrained` runs.
 */
import { experiment } from "../../dsl/experiment.ts";
import * as m from "../../dsl/model.ts";
import { adamWSpec, evalConfig, poly, trainConfig } from "../../dsl/training.ts";
import { ccp, coco133 } from "../../dsl/datasets.ts";
import { testPipeline, trainPipeline } from "../../dsl/dataset.ts";
import { ablationModel, type AblationRow } from "../rankseg/grid.ts";

export type Dataset = "coco133" | "ccp";
export type Row = AblationRow;

/** The provided ImageNet MobileNetV2 (torchvision layout; inputs in [−1, 1]). */
export const WEIGHTS = "../shared/weights/mobilenet_v2_1.0_224.safetensors";

/**
 * κ for the selection rows (about 1.5× the mean number of classes per image, so that ξ may miss a few and
 * still keep them), the κ sweep's other values, and the train+eval oracle's slots (≥ the most classes
 * in one image: 21 in coco133, 14 in ccp).
 */
export const KAPPA: Record<Dataset, number> = { coco133: 25, ccp: 12 };
export const KAPPA_SWEEP: Record<Dataset, readonly number[]> = { coco133: [10, 50, 133], ccp: [6, 24, 59] };
const ORACLE_SLOTS: Record<Dataset, number> = { coco133: 21, ccp: 14 };
const CLASSES: Record<Dataset, number> = { coco133: 133, ccp: 59 };

/**
 * Steps per run (batch 4), chosen from the baseline's learning curve (`curve-coco133.ts`, RESULTS.md quotes
 * it): on coco133 it reached 4.64 / 7.24 / 7.29 / 7.42 mIoU at steps 150 / 300 / 450 / 600, a plateau from
 * about step 300. 500 steps sit on it and fit the budget: at 2.5 s per step on the shared machine (load
 * average ≈ 6.5) and 0.86 s for the from-scratch quickstart there (0.24 s idle), a step takes about 0.7 s
 * on two idle cores, so 30 runs per dataset (10 rows × 3 seeds) of 500 steps plus their evaluations take
 * about 3.3 hours of 2-core time; on a machine shared as it was, about three times that.
 */
export const STEPS = 500;

/** A dataset's data: the dataset, its training pipeline and its test pipeline (every row shares them). */
export const data = (d: Dataset) => {
  const scaling = m.MINUS_ONE_TO_ONE;
  return d === "coco133"
    ? {
      dataset: coco133,
      train: trainPipeline({ scale: [320, 240], ratioRange: [0.75, 1.5], cropSize: [176, 240], ...scaling }),
      test: testPipeline({ resize: [320, 240], ...scaling }),
    }
    // ccp photos are portrait (about 330×500): the same crop area, turned upright.
    : {
      dataset: ccp,
      train: trainPipeline({ scale: [360, 240], ratioRange: [0.75, 1.5], cropSize: [240, 176], ...scaling }),
      test: testPipeline({ resize: [360, 240], ...scaling }),
    };
};

/** The model of a row: the same backbone and heads everywhere; ξ, selection and τ vary. */
export const rowModel = (d: Dataset, row: Row, kappa = KAPPA[d]): m.Segmenter =>
  ablationModel(
    {
      classes: CLASSES[d],
      ignoreIndex: 255,
      backbone: m.mobileNetV2({ outputStride: 16, pretrained: WEIGHTS }),
      // The from-scratch grid's head width (its ConvNet ends at 128 channels): a 320-wide mask transformer
      // would cost more than the backbone and halve the steps the budget buys.
      headDim: 128,
      psi: m.maskTransformer({ layers: 2, heads: 2 }),
    },
    row,
    kappa,
    ORACLE_SLOTS[d],
  );

/** The experiment of one row (κ only for the sweep rows); `steps` and `evalEvery` for the learning curve. */
export const rowExperiment = (
  d: Dataset,
  row: Row,
  kappa?: number,
  { steps = STEPS, evalEvery = 0 }: { steps?: number; evalEvery?: number } = {},
) =>
  experiment({
    name: `rankseg-pretrained-${d}-${row}${kappa === undefined ? "" : `-k${kappa}`}`,
    model: rowModel(d, row, kappa),
    data: data(d),
    train: trainConfig({
      steps,
      batchSize: 4,
      optimizer: adamWSpec({ lr: 1e-3, weightDecay: 0.01 }),
      schedule: poly({ warmupSteps: 20, minLr: 1e-6 }),
      // The pretrained backbone fine-tunes at a tenth of the heads' rate (first matching group wins).
      paramGroups: [{ pattern: "^model\\.backbone\\.", lrMult: 0.1, wdMult: 1 }],
      logEvery: 10,
      evalEvery,
      checkpointEvery: Math.min(steps, 200),
      keepCheckpoints: 1,
    }),
    eval: evalConfig({ examples: 2 }),
  });
