/** A small self-contained SVG bar chart with error bars and a reference line (for RESULTS.md). */

export interface Bar {
  readonly label: string;
  readonly mean: number;
  readonly std: number;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

export const barChart = (title: string, bars: readonly Bar[], reference?: number): string => {
  const [h, left, bottom, top] = [370, 60, 110, 50];
  // 90 px per bar, and room on the right for the last bar's slanted label.
  const w = Math.max(left + 90 * bars.length + 60, 560);
  // Axis up to a round number, ticks at steps of 1, 2 or 5 × 10^n.
  const highest = Math.max(...bars.map((b) => b.mean + b.std), reference ?? 0, 1) * 1.05;
  const rough = highest / 5, magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough)!;
  const max = Math.ceil(highest / step) * step;
  const y = (v: number) => top + (h - top - bottom) * (1 - v / max);
  const ticks = Array.from({ length: Math.round(max / step) + 1 }, (_, i) => i * step);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${w / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    ...ticks.map((t) =>
      `<line x1="${left}" x2="${w - 10}" y1="${y(t)}" y2="${y(t)}" stroke="#ddd"/>` +
      `<text x="${left - 6}" y="${y(t) + 4}" text-anchor="end">${+t.toFixed(2)}</text>`
    ),
    `<text transform="translate(16 ${
      (h - bottom + top) / 2
    }) rotate(-90)" text-anchor="middle">mIoU (%)</text>`,
  ];
  bars.forEach((b, i) => {
    const x = left + 20 + i * 90;
    out.push(
      `<rect x="${x}" y="${y(b.mean)}" width="50" height="${y(0) - y(b.mean)}" fill="#4c78a8"/>`,
      `<line x1="${x + 25}" x2="${x + 25}" y1="${y(b.mean + b.std)}" y2="${
        y(Math.max(b.mean - b.std, 0))
      }" stroke="black"/>`,
      `<text x="${x + 25}" y="${y(b.mean + b.std) - 4}" text-anchor="middle">${b.mean.toFixed(1)}</text>`,
      `<text transform="translate(${x + 25} ${h - bottom + 14}) rotate(35)" font-size="11">${
        esc(b.label)
      }</text>`,
    );
  });
  if (reference !== undefined) {
    out.push(
      `<line x1="${left}" x2="${w - 10}" y1="${y(reference)}" y2="${
        y(reference)
      }" stroke="#e45756" stroke-dasharray="6 4"/>`,
      // The line's legend sits above the plot, where no bar can cover it.
      `<line x1="${w - 190}" x2="${w - 160}" y1="${top - 14}" y2="${top - 14}" stroke="#e45756" ` +
        `stroke-dasharray="6 4"/>`,
      `<text x="${w - 154}" y="${top - 10}" fill="#e45756">trivial predictor: ${reference.toFixed(2)}</text>`,
    );
  }
  out.push("</svg>");
  return out.join("\n");
};
