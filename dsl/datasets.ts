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

/**
 * Clothing Co-Parsing (59 classes, 0 = background, ignore 255): 804 / 200 photos with pixel masks in train /
 * val. Its 1,094 photos with image-level tags only live in `image-level/`, outside `images/`, so the Folder
 * reader (which lists `images/<split>/`) never sees them.
 */
export const ccp: DatasetSpec = folder({
  name: "ccp",
  root: "../shared/data/ccp",
  classes: "classes.json",
});

/** Built-in specs by the names the CLI accepts. */
export const builtinDatasets: Readonly<Record<string, DatasetSpec>> = { camvid, coco133, ccp };
