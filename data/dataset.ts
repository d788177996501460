/**
 * What every dataset reader provides: the split's samples, its training classes, and a way to decode one
 * sample into full-resolution pixels and training ids.
 *
 * Readers are plain records of functions so the loader can open the same dataset inside a Worker from its
 * (JSON) spec and read sample `i` there.
 */
import type { Effect } from "effect";
import type { ClassTable } from "./classes.ts";
import type { FileError, Problem } from "./errors.ts";
import type { LabelMapping } from "./labels.ts";
import type { DatasetSpec } from "../dsl/dataset.ts";
import type { TargetSegment } from "./panoptic_targets.ts";

/**
 * A sample's panoptic annotation as training needs it: the segment id of every pixel (0 = void) and the
 * segments' classes; the training pipeline crops, flips and pads it exactly as the semantic labels.
 */
export interface PanopticLabels {
  readonly segmentIds: Int32Array;
  readonly segments: readonly TargetSegment[];
}

/** One sample of a split: its id (the file stem) and the files it is read from. */
export interface SampleRef {
  readonly id: string;
  readonly image: string;
  readonly mask: string;
}

/** A decoded sample at full resolution. */
export interface LabeledImage {
  readonly id: string;
  readonly width: number;
  readonly height: number;
  /** 8-bit RGB, HWC. */
  readonly image: Uint8Array;
  /**
   * Training ids `0..K-1`, ignore = `classes.ignoreIndex`, row-major. Hidden classes (see `LabelMapping`)
   * still carry their ids here; the pipeline hides them after deriving image-level labels.
   */
  readonly labels: Int32Array;
  /** Present when the task asks for panoptic targets (COCO panoptic datasets only). */
  readonly panoptic?: PanopticLabels;
}

/** An opened split of a dataset. */
export interface Dataset {
  readonly spec: DatasetSpec;
  readonly name: string;
  readonly split: string;
  readonly classes: ClassTable;
  readonly mapping: LabelMapping;
  /** Image files in the split, including those left out of `samples` for listing problems. */
  readonly imageCount: number;
  /** The split's readable-looking samples, sorted by id; samples with listing problems are left out. */
  readonly samples: readonly SampleRef[];
  /** Problems found while listing (an image without mask, a mask without image, a bad annotation entry). */
  readonly problems: readonly Problem[];
  /** Decodes and checks one sample: image and mask readable, same size, every mask value in the table. */
  readonly read: (sample: SampleRef) => Effect.Effect<LabeledImage, FileError>;
}
