/**
 * Colours of classes in the page: the dataset's class table colours when the server sends them, else
 * kappa's default palette (eval/colorize.ts's `defaultPalette`, repeated here because the page imports
 * nothing of kappa's but core/; a test checks both give the same colours).
 */

export type Rgb = readonly [number, number, number];

/** Colour c spreads the bits of c + 1 over the channels, most significant first (black stays free). */
export const defaultPalette = (count: number): Rgb[] =>
  Array.from({ length: count }, (_, c) => {
    let rgb = [0, 0, 0];
    let bits = c + 1;
    for (let j = 0; bits > 0 && j < 8; j++, bits >>= 3) {
      rgb = rgb.map((v, ch) => v | (((bits >> ch) & 1) << (7 - j)));
    }
    return [rgb[0], rgb[1], rgb[2]] as const;
  });
