/**
 * The RankSeg ablation grid at CPU scale (issue: reproduce Table 1, the oracles and the κ sweep).
 *
 * Every row shares the backbone, data pipeline, step budget and seeds; rows differ only in the parts the
 * paper ablates, except two reference rows per dataset that swap the mask-transformer ψ for a linear one.
 * Each row has its own checked-in spec module next to this file (`<dataset>-<row>.ts`), which is what
 * `deno task grid ablation` runs.
 */
import { experiment } from "../../dsl/experiment.ts";
import * as m from "../../dsl/model.ts";
import { adamWSpec, evalConfig, poly, trainConfig } from "../../dsl/training.ts";
import { camvid, coco133 } from "../../dsl/datasets.ts";
import { testPipeline, trainPipeline } from "../../dsl/dataset.ts";

export type Dataset = "coco133" | "camvid";
export type Row =
  | "baseline"
  | "mt"
  | "mt-ls"
  | "mt-ls-ra"
  | "mt-ls-rln"
  | "gt-eval"
  | "gt-train-eval"
  // Two reference rows with the quickstart's per-pixel linear ψ: is the pixel head, not RankSeg's parts,
  // what limits these rows at this scale?
  | "baseline-linear"
  | "mt-ls-ra-linear";

/** κ for the selection rows, and the slots of the train+eval oracle (≥ the most classes in an image). */
export const KAPPA: Record<Dataset, number> = { coco133: 25, camvid: 8 };
const ORACLE_SLOTS: Record<Dataset, number> = { coco133: 21, camvid: 11 };
const CLASSES: Record<Dataset, number> = { coco133: 133, camvid: 11 };

/** Steps per run (batch 4): about three minutes on 2 cores. */
export const STEPS = 400;

const data = (d: Dataset) =>
  d === "coco133"
    ? {
      dataset: coco133,
      train: trainPipeline({ scale: [320, 240], ratioRange: [0.75, 1.5], cropSize: [176, 240] }),
      test: testPipeline({ resize: [320, 240] }),
    }
    : {
      dataset: camvid,
      train: trainPipeline({ scale: [240, 180], ratioRange: [0.75, 1.5], cropSize: [176, 240] }),
      test: testPipeline({ resize: [240, 180] }),
    };

/** The rows that differ only in the parts the paper ablates (ξ, selection, τ); every grid has them. */
export type AblationRow =
  | "baseline"
  | "mt"
  | "mt-ls"
  | "mt-ls-ra"
  | "mt-ls-rln"
  | "gt-eval"
  | "gt-train-eval";

/** What a grid's rows share: classes, ignore index, backbone, ψ and (optionally) the head width. */
export type RowBase = Pick<m.Segmenter, "classes" | "ignoreIndex" | "backbone" | "psi"> & {
  headDim?: number;
};

/**
 * The model of an ablation row over a grid's shared `base`: ξ, selection (κ, or the train+eval oracle's
 * `oracleSlots`) and τ vary, nothing else. The pretrained grid (`../rankseg-pretrained/grid.ts`) uses the
 * same rows over its own base.
 */
export const ablationModel = (
  base: RowBase,
  row: AblationRow,
  kappa: number,
  oracleSlots: number,
): m.Segmenter => {
  const withXi = {
    ...base,
    xi: m.transformerEncoder({ pool: 8, heads: 2 }),
    multiLabelLoss: m.asymmetricLoss({ weight: 1 }),
  };
  switch (row) {
    case "baseline":
      return m.segmenter({
        ...base,
        xi: null,
        multiLabelLoss: null,
        select: m.all(),
        temperature: m.shared(),
      });
    case "mt":
      return m.segmenter({ ...withXi, select: m.all(), temperature: m.shared() });
    case "mt-ls":
      return m.segmenter({ ...withXi, select: m.topK(kappa), temperature: m.shared() });
    case "mt-ls-ra":
      return m.segmenter({ ...withXi, select: m.topK(kappa), temperature: m.rankAdaptive() });
    case "mt-ls-rln":
      return m.segmenter({ ...withXi, select: m.topK(kappa), temperature: m.rankLayerNorm() });
    case "gt-eval":
      return m.segmenter({
        ...withXi,
        select: m.groundTruth({ k: kappa, train: false }),
        temperature: m.rankAdaptive(),
      });
    case "gt-train-eval":
      return m.segmenter({
        ...withXi,
        select: m.groundTruth({ k: oracleSlots }),
        temperature: m.rankAdaptive(),
      });
  }
};

/**
 * The model of a row: the same backbone and heads everywhere; ξ, selection and τ vary (and ψ, in the two
 * "-linear" reference rows only).
 */
export const rowModel = (d: Dataset, row: Row, kappa = KAPPA[d]): m.Segmenter =>
  ablationModel(
    {
      classes: CLASSES[d],
      ignoreIndex: d === "camvid" ? 11 : 255,
      backbone: m.convNet({ widths: [32, 64, 128], blocksPerStage: 2 }),
      psi: row.endsWith("-linear") ? m.linearPsi() : m.maskTransformer({ layers: 2, heads: 2 }),
    },
    row === "baseline-linear" ? "baseline" : row === "mt-ls-ra-linear" ? "mt-ls-ra" : row,
    kappa,
    ORACLE_SLOTS[d],
  );

/** The experiment of one row (κ only for the sweep rows). */
export const rowExperiment = (d: Dataset, row: Row, kappa?: number) =>
  experiment({
    name: `rankseg-${d}-${row}${kappa === undefined ? "" : `-k${kappa}`}`,
    model: rowModel(d, row, kappa),
    data: data(d),
    train: trainConfig({
      steps: STEPS,
      batchSize: 4,
      optimizer: adamWSpec({ lr: 1e-3, weightDecay: 0.01 }),
      schedule: poly({ warmupSteps: 20, minLr: 1e-6 }),
      logEvery: 10,
      checkpointEvery: STEPS,
      keepCheckpoints: 1,
    }),
    eval: evalConfig({ examples: 2 }),
  });
