/** Panoptic outputs: COCO's id → RGB encoding, segments_info (area, bbox), the outlined picture. */
import { assertEquals } from "./assert.ts";
import { colorizePanoptic, panopticPngRgb, segmentsInfo } from "../eval/panoptic_output.ts";

// A 4×3 map: segment 1 (class 0, thing) the left 2 columns, segment 258 (class 2, stuff) the rest of the
// top two rows, void (0) the bottom right 2×1.
const W = 4;
const ids = Int32Array.of(1, 1, 258, 258, 1, 1, 258, 258, 1, 1, 0, 0);
const segments = [
  { id: 1, category: 0, isThing: true, score: 0.9 },
  { id: 258, category: 2, isThing: false, score: 0.6 },
];

Deno.test("panoptic PNG: id = R + 256·G + 256²·B", () => {
  const rgb = panopticPngRgb(Int32Array.of(0, 1, 258, 65536 + 3));
  assertEquals(Array.from(rgb), [0, 0, 0, 1, 0, 0, 2, 1, 0, 3, 0, 1]);
});

Deno.test("segments_info: area and bbox [x, y, w, h] measured on the map, COCO category ids", () => {
  const info = segmentsInfo(ids, W, segments, (c) => [1, 5, 92][c]);
  assertEquals(info, [
    { id: 1, category_id: 1, iscrowd: 0, isthing: 1, area: 6, bbox: [0, 0, 2, 3], score: 0.9 },
    { id: 258, category_id: 92, iscrowd: 0, isthing: 0, area: 4, bbox: [2, 0, 2, 2], score: 0.6 },
  ]);
});

Deno.test("colorized picture: class colours, white outlines where the right or lower neighbour differs", () => {
  const colors: [number, number, number][] = [[10, 20, 30], [0, 0, 0], [200, 100, 50]];
  const rgb = colorizePanoptic(ids, W, 3, segments, colors);
  const px = (x: number, y: number) => Array.from(rgb.subarray(3 * (y * W + x), 3 * (y * W + x) + 3));
  assertEquals(px(0, 0), [10, 20, 30]); // inside segment 1
  assertEquals(px(1, 0), [255, 255, 255]); // its right neighbour is segment 258
  assertEquals(px(3, 0), [200, 100, 50]); // inside segment 258
  assertEquals(px(2, 1), [255, 255, 255]); // below it: void
  assertEquals(px(3, 2), [0, 0, 0]); // void
});
