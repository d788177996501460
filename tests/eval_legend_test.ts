/** The predict overlay's legend: exactly the classes present, each drawn with its colour and name. */
import { Effect } from "effect";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assertEquals } from "./assert.ts";
import {
  legendEntries,
  legendLayout,
  legendSvg,
  MIN_LEGEND_WIDTH,
  SWATCH,
  writePngWithLegend,
} from "../eval/legend.ts";
import { readImageRgb } from "../eval/png.ts";
import type { Rgb } from "../eval/colorize.ts";

const names = ["sky", "road", "car", "tree<1>", "sign", "pole"];
const colors: Rgb[] = [[128, 128, 128], [128, 64, 128], [64, 0, 128], [128, 128, 0], [192, 128, 128], [
  192,
  192,
  128,
]];

// 200×10 label map: 1200 px road, 500 tree, 290 car, 10 ignored; sky, sign, pole absent.
const W = 200, H = 10;
const labels = new Int32Array(W * H).map((_, i) => (i < 1200 ? 1 : i < 1700 ? 3 : i < 1990 ? 2 : 255));

Deno.test("legend: exactly the classes present, most pixels first; ignored pixels left out", () => {
  const entries = legendEntries(labels, names, colors, 255);
  assertEquals(entries.map((e) => [e.class, e.name, e.pixels]), [[1, "road", 1200], [3, "tree<1>", 500], [
    2,
    "car",
    290,
  ]]);
  const { svg } = legendSvg(entries, W);
  assertEquals([...svg.matchAll(/data-class="(\d+)"/g)].map((m) => Number(m[1])), [1, 3, 2]);
  assertEquals([...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]), [
    "road",
    "tree&lt;1&gt;",
    "car",
  ]);
  assertEquals(legendSvg([], W).height, 0);
});

Deno.test("legend: drawn below the overlay PNG, each swatch in its class colour", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-legend-"));
  try {
    const entries = legendEntries(labels, names, colors, 255);
    const { items, height } = legendLayout(entries, W);
    const file = join(dir, "overlay.png");
    const image = new Uint8Array(W * H * 3).fill(7);
    await Effect.runPromise(writePngWithLegend(file, image, W, H, entries));
    const png = await Effect.runPromise(readImageRgb(file));
    assertEquals([png.width, png.height], [W, H + height]);
    const pixel = (x: number, y: number) =>
      Array.from(png.rgb.subarray(3 * (y * W + x), 3 * (y * W + x) + 3));
    assertEquals(pixel(0, 0), [7, 7, 7]); // the picture itself is unchanged
    for (const { entry, x, y } of items) {
      assertEquals(pixel(x + SWATCH / 2, H + y + SWATCH / 2), [...entry.color], entry.name);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("legend on a narrow image: long names wrap (and shrink) inside the strip instead of being cut", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-legend-"));
  try {
    const long = ["sky", "motorcyclist on the sidewalk", "WWWWWWWWWWWWWWWW", "traffic-light-pole"];
    const entries = long.map((name, c) => ({ class: c, name, color: colors[c], pixels: 10 - c }));
    for (const width of [100, 60, 20]) {
      const layout = legendLayout(entries, width);
      // Every line of every name fits between the swatch and the right padding of the (possibly widened) strip.
      for (const item of layout.items) {
        assertEquals(
          item.lines.join("").replace(/ /g, ""),
          item.entry.name.replace(/ /g, ""),
          item.entry.name,
        );
        for (const w of item.lineWidths) {
          assertEquals(item.x + SWATCH + 4 + w <= layout.width - 2, true, `${item.entry.name} at ${width}`);
        }
      }
      assertEquals([MIN_LEGEND_WIDTH, layout.width], [40, Math.max(width, 40)]);
      const file = join(dir, `overlay-${width}.png`);
      const h = 4;
      await Effect.runPromise(
        writePngWithLegend(file, new Uint8Array(width * h * 3).fill(7), width, h, entries),
      );
      const png = await Effect.runPromise(readImageRgb(file));
      assertEquals([png.width, png.height], [layout.width, h + layout.height]);
      // No glyph reaches the right edge: the last two columns of the strip are white.
      for (let y = h; y < png.height; y++) {
        for (const x of [png.width - 2, png.width - 1]) {
          const p = Array.from(png.rgb.subarray(3 * (y * png.width + x), 3 * (y * png.width + x) + 3));
          assertEquals(p, [255, 255, 255], `width ${width}: pixel (${x}, ${y})`);
        }
      }
    }
    // Where names fit, one line each at the normal size.
    const roomy = legendLayout(entries, 600);
    assertEquals(roomy.items.map((i) => [i.lines.length, i.fontSize]), [[1, 12], [1, 12], [1, 12], [1, 12]]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
