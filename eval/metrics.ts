/** Evaluation metrics: one import for the CLI's eval step. */
export * from "./segmentation_metrics.ts";
export * from "./multilabel_ap.ts";
export * from "./panoptic_quality.ts";
export * from "./metrics_table.ts";
export * from "./eval_record.ts";
export * from "./metrics_error.ts";
