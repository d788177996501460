/**
 * Writing a panoptic prediction the way COCO panoptic stores one: a PNG whose RGB encodes the segment id
 * (id = R + 256·G + 256²·B, 0 = void) plus a JSON entry per image with `segments_info` (id, category_id,
 * iscrowd, area, bbox [x, y, w, h], and kappa's `score`), and a colorized picture for people: each
 * segment in its class colour (thing instances shaded apart), segment boundaries drawn as outlines.
 */
import type { Rgb } from "../data/classes.ts";

export interface OutputSegment {
  readonly id: number;
  readonly category: number;
  readonly isThing: boolean;
  readonly score: number;
}

/** COCO's id → RGB encoding of a segment-id map (HWC bytes). */
export const panopticPngRgb = (ids: Int32Array): Uint8Array => {
  const rgb = new Uint8Array(ids.length * 3);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    rgb[3 * i] = id & 255;
    rgb[3 * i + 1] = (id >> 8) & 255;
    rgb[3 * i + 2] = (id >> 16) & 255;
  }
  return rgb;
};

/** `segments_info` of one image: area and bbox measured on `ids`; `categoryId` maps a class to COCO's id. */
export const segmentsInfo = (
  ids: Int32Array,
  width: number,
  segments: readonly OutputSegment[],
  categoryId: (category: number) => number,
) => {
  const box = new Map(segments.map((s) => [s.id, { x0: Infinity, y0: Infinity, x1: -1, y1: -1, area: 0 }]));
  for (let i = 0; i < ids.length; i++) {
    const b = box.get(ids[i]);
    if (!b) continue;
    const x = i % width, y = (i - x) / width;
    b.area++;
    b.x0 = Math.min(b.x0, x), b.y0 = Math.min(b.y0, y), b.x1 = Math.max(b.x1, x), b.y1 = Math.max(b.y1, y);
  }
  return segments.map((s) => {
    const b = box.get(s.id)!;
    return {
      id: s.id,
      category_id: categoryId(s.category),
      iscrowd: 0,
      isthing: s.isThing ? 1 : 0,
      area: b.area,
      bbox: b.area === 0 ? [0, 0, 0, 0] : [b.x0, b.y0, b.x1 - b.x0 + 1, b.y1 - b.y0 + 1],
      score: s.score,
    };
  });
};

/**
 * A picture of the panoptic map (HWC RGB): class colours, the k-th instance of a thing class shaded by
 * ±12·k so that touching instances differ, void black, and white outlines on pixels whose right or lower
 * neighbour belongs to another segment.
 */
export const colorizePanoptic = (
  ids: Int32Array,
  width: number,
  height: number,
  segments: readonly OutputSegment[],
  colors: readonly Rgb[],
): Uint8Array => {
  const colorOf = new Map<number, Rgb>();
  const seen = new Map<number, number>();
  for (const s of segments) {
    const k = seen.get(s.category) ?? 0;
    seen.set(s.category, k + 1);
    const shade = s.isThing ? (k % 2 === 0 ? 1 : -1) * 12 * Math.ceil(k / 2) : 0;
    const c = colors[s.category] ?? [128, 128, 128];
    colorOf.set(s.id, c.map((v) => Math.max(0, Math.min(255, v + shade))) as unknown as Rgb);
  }
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const id = ids[i];
      const edge = (x + 1 < width && ids[i + 1] !== id) || (y + 1 < height && ids[i + width] !== id);
      const c: Rgb = edge ? [255, 255, 255] : colorOf.get(id) ?? [0, 0, 0];
      rgb.set(c, 3 * i);
    }
  }
  return rgb;
};
