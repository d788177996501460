/**
 * The datasets kappa ships specs for, by name: the real data under `../shared/data`.
 */
import { cocoPanoptic, type DatasetSpec, folder } from "./dataset.ts";

/** CamVid (11 classes, void = 11): 367 / 101 / 233 images in train / val / test. */
export const camvid: DatasetSpec = folder({
  name: "camvid",
  root: "../shared/data/camvid",
  classes: "classes.json",
});

/** COCO 2017 panoptic subset, 133 categories: 100 / 100 images in train2017 / val2017. */
export const coco133: DatasetSpec = cocoPanoptic({ name: "coco133", root: "../shared/data/coco133" });

/** Built-in specs by the names the CLI accepts. */
export const builtinDatasets: Readonly<Record<string, DatasetSpec>> = { camvid, coco133 };
