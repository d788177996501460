/**
 * A legend for a predicted mask: the classes present, each with its colour and name, drawn as a strip
 * below the overlay picture (an SVG composited by sharp), so a PNG that travels alone still says which
 * colour is which class.
 */
import { Effect } from "effect";
import sharp from "sharp";
import { Buffer } from "node:buffer";
import type { Rgb } from "./colorize.ts";
import { ImageFileError } from "./png.ts";

export interface LegendEntry {
  readonly class: number;
  readonly name: string;
  readonly color: Rgb;
  readonly pixels: number;
}

/** The classes present in `labels` (ignored pixels and unknown labels left out), most pixels first. */
export const legendEntries = (
  labels: Int32Array | Uint8Array,
  names: readonly string[],
  colors: readonly Rgb[],
  ignoreIndex: number,
): LegendEntry[] => {
  const counts = new Map<number, number>();
  for (const l of labels) {
    if (l !== ignoreIndex && l >= 0 && l < colors.length) counts.set(l, (counts.get(l) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0]).map(([c, pixels]) => ({
    class: c,
    name: names[c] ?? `class_${c}`,
    color: colors[c],
    pixels,
  }));
};

const escapeXml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export const LEGEND_ROW = 20, LEGEND_PAD = 6, SWATCH = 14;
const CHAR_WIDTH = 7; // at font-size 12: a generous estimate, so names do not run into the next swatch

/** Where each entry goes: items flow left to right and wrap at `width`. */
export const legendLayout = (entries: readonly LegendEntry[], width: number) => {
  let x = LEGEND_PAD, row = 0;
  const items = entries.map((entry) => {
    const itemWidth = SWATCH + 4 + entry.name.length * CHAR_WIDTH;
    if (x + itemWidth > width - LEGEND_PAD && x > LEGEND_PAD) {
      x = LEGEND_PAD;
      row++;
    }
    const item = { entry, x, y: LEGEND_PAD + row * LEGEND_ROW };
    x += itemWidth + 12;
    return item;
  });
  return { items, height: entries.length === 0 ? 0 : 2 * LEGEND_PAD + (row + 1) * LEGEND_ROW - 6 };
};

/** The legend strip as SVG; every entry is a `<g class="legend-entry" data-class=…>`. */
export const legendSvg = (
  entries: readonly LegendEntry[],
  width: number,
): { svg: string; height: number } => {
  const { items, height } = legendLayout(entries, width);
  const parts = items.map(({ entry, x, y }) =>
    `<g class="legend-entry" data-class="${entry.class}">` +
    `<rect x="${x}" y="${y}" width="${SWATCH}" height="${SWATCH}" fill="rgb(${entry.color.join(",")})" ` +
    `stroke="#444" stroke-width="1"/>` +
    `<text x="${x + SWATCH + 4}" y="${y + 11}" font-family="sans-serif" font-size="12" fill="#111">${
      escapeXml(entry.name)
    }</text></g>`
  );
  return {
    svg: `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      `<rect width="${width}" height="${height}" fill="#fff"/>${parts.join("")}</svg>`,
    height,
  };
};

/** Writes packed RGB pixels as a PNG with the legend strip below them. */
export const writePngWithLegend = (
  file: string,
  rgb: Uint8Array,
  width: number,
  height: number,
  entries: readonly LegendEntry[],
): Effect.Effect<void, ImageFileError> => {
  const legend = legendSvg(entries, width);
  return Effect.tryPromise({
    try: async () => {
      // Extend first (its own pipeline step), then draw the legend into the new rows.
      const extended = await sharp(rgb, { raw: { width, height, channels: 3 } })
        .extend({ bottom: legend.height, background: { r: 255, g: 255, b: 255 } })
        .raw().toBuffer();
      await sharp(extended, { raw: { width, height: height + legend.height, channels: 3 } })
        .composite(legend.height ? [{ input: Buffer.from(legend.svg), top: height, left: 0 }] : [])
        .removeAlpha().png().toFile(file);
    },
    catch: (e) =>
      new ImageFileError({
        file,
        message: `${file}: cannot write PNG (${e instanceof Error ? e.message : String(e)})`,
      }),
  }).pipe(Effect.asVoid);
};
