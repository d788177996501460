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
/** Font sizes: the normal one, and the smallest a legend shrinks to before it wraps inside words. */
export const FONT_SIZE = 12, MIN_FONT_SIZE = 8;
const GAP = 4; // between a swatch and its name
const ITEM_GAP = 12; // between items on one row

/**
 * Upper bounds of glyph advances, in em, for DejaVu Sans (what libvips' SVG renderer picks for
 * `sans-serif` on Debian; Liberation Sans, the other common choice, is narrower), plus 5 %: a layout
 * computed with them never lets a name run past the strip, where an average width would cut wide names.
 */
const charEm = (ch: string): number => {
  if (ch.charCodeAt(0) > 126) return 1.05;
  if ("ijl'|.,:;! `".includes(ch)) return 0.42;
  if ('frt()[]/\\-"'.includes(ch)) return 0.44;
  if ("mwMW@%".includes(ch)) return 1.05;
  if ("#+<=>^~&".includes(ch)) return 0.88;
  if (ch >= "A" && ch <= "Z") return 0.83;
  return 0.67;
};

/** The width `text` takes at `fontSize`, never less than what the renderer draws. */
export const textWidth = (text: string, fontSize: number): number =>
  Math.ceil([...text].reduce((w, ch) => w + charEm(ch) * fontSize, 0));

/**
 * The narrowest strip: padding, a swatch and one character of any name at the smallest size (2·6 + 14 +
 * 4 + 8.4, rounded up to 40). Narrower pictures get a strip (and canvas) this wide.
 */
export const MIN_LEGEND_WIDTH = 40;

/**
 * Breaks `text` into lines no wider than `room` at `fontSize`: at spaces where possible, inside a word
 * where the word alone is wider than the room.
 */
const wrapText = (text: string, room: number, fontSize: number): string[] => {
  const lines: string[] = [];
  let line = "";
  const push = () => {
    if (line !== "") lines.push(line);
    line = "";
  };
  for (const word of text.split(" ").filter((w) => w !== "")) {
    const joined = line === "" ? word : `${line} ${word}`;
    if (textWidth(joined, fontSize) <= room) {
      line = joined;
      continue;
    }
    push();
    for (const ch of word) {
      if (line !== "" && textWidth(line + ch, fontSize) > room) push();
      line += ch;
    }
  }
  push();
  return lines.length ? lines : [text];
};

export interface LegendItem {
  readonly entry: LegendEntry;
  /** Top-left corner of the swatch. */
  readonly x: number;
  readonly y: number;
  /** The name, wrapped; every line fits between the swatch and the strip's right padding. */
  readonly lines: readonly string[];
  readonly lineWidths: readonly number[];
  readonly fontSize: number;
}

/**
 * Where each entry goes: items flow left to right and wrap at `width`. A name that does not fit on a row
 * shrinks the legend's font (down to `MIN_FONT_SIZE`) and then wraps onto several lines, so no name is
 * ever cut; a picture narrower than `MIN_LEGEND_WIDTH` gets a strip (and canvas) of that width.
 */
export const legendLayout = (entries: readonly LegendEntry[], imageWidth: number) => {
  const width = Math.max(imageWidth, MIN_LEGEND_WIDTH);
  const room = width - 2 * LEGEND_PAD - SWATCH - GAP;
  const widestWord = Math.max(
    0,
    ...entries.flatMap((e) => e.name.split(" ").map((w) => textWidth(w, FONT_SIZE))),
  );
  const fontSize = widestWord <= room
    ? FONT_SIZE
    : Math.max(MIN_FONT_SIZE, Math.floor((FONT_SIZE * room) / widestWord));
  const lineHeight = Math.ceil(fontSize * 1.25);
  let x = LEGEND_PAD, y = LEGEND_PAD, rowHeight = 0;
  const items: LegendItem[] = entries.map((entry) => {
    const lines = wrapText(entry.name, room, fontSize);
    const lineWidths = lines.map((l) => textWidth(l, fontSize));
    const itemWidth = SWATCH + GAP + Math.max(...lineWidths);
    const itemHeight = Math.max(SWATCH, lines.length * lineHeight);
    if (x + itemWidth > width - LEGEND_PAD && x > LEGEND_PAD) {
      x = LEGEND_PAD;
      y += Math.max(rowHeight, LEGEND_ROW - 6) + 6;
      rowHeight = 0;
    }
    const item = { entry, x, y, lines, lineWidths, fontSize };
    x += itemWidth + ITEM_GAP;
    rowHeight = Math.max(rowHeight, itemHeight);
    return item;
  });
  const height = entries.length === 0 ? 0 : y + Math.max(rowHeight, LEGEND_ROW - 6) + LEGEND_PAD;
  return { items, height, width, fontSize };
};

/** The legend strip as SVG; every entry is a `<g class="legend-entry" data-class=…>`, one `<text>` per line. */
export const legendSvg = (
  entries: readonly LegendEntry[],
  imageWidth: number,
): { svg: string; height: number; width: number } => {
  const { items, height, width } = legendLayout(entries, imageWidth);
  const parts = items.map(({ entry, x, y, lines, fontSize }) =>
    `<g class="legend-entry" data-class="${entry.class}">` +
    `<rect x="${x}" y="${y}" width="${SWATCH}" height="${SWATCH}" fill="rgb(${entry.color.join(",")})" ` +
    `stroke="#444" stroke-width="1"/>` +
    lines.map((line, i) =>
      `<text x="${x + SWATCH + GAP}" y="${
        y + Math.round(fontSize * 0.92) + i * Math.ceil(fontSize * 1.25)
      }" font-family="sans-serif" font-size="${fontSize}" fill="#111">${escapeXml(line)}</text>`
    ).join("") +
    `</g>`
  );
  return {
    svg: `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      `<rect width="${width}" height="${height}" fill="#fff"/>${parts.join("")}</svg>`,
    height,
    width,
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
      // Extend first (its own pipeline step), then draw the legend into the new rows. A picture narrower
      // than the legend's minimum is padded on the right with white.
      const extended = await sharp(rgb, { raw: { width, height, channels: 3 } })
        .extend({
          bottom: legend.height,
          right: legend.width - width,
          background: { r: 255, g: 255, b: 255 },
        })
        .raw().toBuffer();
      await sharp(extended, { raw: { width: legend.width, height: height + legend.height, channels: 3 } })
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
