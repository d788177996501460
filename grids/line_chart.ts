/**
 * A small self-contained SVG line chart (for RESULTS.md): series of points joined by lines, dashed
 * horizontal reference lines, and an optional vertical marker (the ranker-quality sweep's crossover).
 */

export interface Series {
  readonly label: string;
  readonly points: readonly { readonly x: number; readonly y: number }[];
  readonly color: string;
  /** A horizontal line at this value across the plot instead of the points (a control). */
  readonly level?: number;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** Axis bounds rounded out to ticks of 1, 2 or 5 × 10^n, about five of them. */
const axis = (lo: number, hi: number) => {
  const span = Math.max(hi - lo, 1e-9), rough = span / 5, magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough)!;
  const min = Math.floor(lo / step) * step, max = Math.ceil(hi / step) * step;
  return {
    min,
    max,
    ticks: Array.from({ length: Math.round((max - min) / step) + 1 }, (_, i) => min + i * step),
  };
};

export const lineChart = (
  title: string,
  xLabel: string,
  yLabel: string,
  series: readonly Series[],
  marker?: { readonly x: number; readonly label: string },
): string => {
  const [w, h, left, right, top, bottom] = [640, 400, 60, 20, 50, 90];
  const xs = series.flatMap((s) => s.points.map((p) => p.x)).concat(marker ? [marker.x] : []);
  const ys = series.flatMap((s) => (s.level === undefined ? s.points.map((p) => p.y) : [s.level]));
  // x spans the data (a recall axis from 74 to 100 would waste three quarters of the plot from 0); y from 0.
  const ax = axis(Math.min(...xs), Math.max(...xs)), ay = axis(0, Math.max(...ys, 1) * 1.05);
  const x = (v: number) => left + (w - left - right) * (v - ax.min) / (ax.max - ax.min);
  const y = (v: number) => top + (h - top - bottom) * (1 - (v - ay.min) / (ay.max - ay.min));
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${w / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    ...ay.ticks.map((t) =>
      `<line x1="${left}" x2="${w - right}" y1="${y(t)}" y2="${y(t)}" stroke="#ddd"/>` +
      `<text x="${left - 6}" y="${y(t) + 4}" text-anchor="end">${+t.toFixed(2)}</text>`
    ),
    ...ax.ticks.map((t) =>
      `<line x1="${x(t)}" x2="${x(t)}" y1="${top}" y2="${h - bottom}" stroke="#eee"/>` +
      `<text x="${x(t)}" y="${h - bottom + 16}" text-anchor="middle">${+t.toFixed(2)}</text>`
    ),
    `<text x="${(left + w - right) / 2}" y="${h - bottom + 34}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(16 ${(h - bottom + top) / 2}) rotate(-90)" text-anchor="middle">${
      esc(yLabel)
    }</text>`,
  ];
  series.forEach((s, i) => {
    if (s.level !== undefined) {
      out.push(
        `<line x1="${left}" x2="${w - right}" y1="${y(s.level)}" y2="${y(s.level)}" stroke="${s.color}" ` +
          `stroke-dasharray="6 4"/>`,
      );
    } else {
      const sorted = [...s.points].sort((a, b) => a.x - b.x);
      out.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${
          sorted.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(" ")
        }"/>`,
        ...sorted.map((p) =>
          `<circle cx="${x(p.x).toFixed(1)}" cy="${y(p.y).toFixed(1)}" r="3" fill="${s.color}"/>`
        ),
      );
    }
    // The legend below the axis label, two entries per line.
    const [lx, ly] = [left + (i % 2) * 290, h - bottom + 54 + Math.floor(i / 2) * 16];
    out.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${
        s.level === undefined ? "" : ` stroke-dasharray="6 4"`
      }/>`,
      `<text x="${lx + 30}" y="${ly}">${esc(s.label)}</text>`,
    );
  });
  if (marker) {
    out.push(
      `<line x1="${x(marker.x)}" x2="${x(marker.x)}" y1="${top}" y2="${h - bottom}" stroke="black" ` +
        `stroke-dasharray="2 3"/>`,
      `<text x="${x(marker.x) + 4}" y="${top + 12}">${esc(marker.label)}</text>`,
    );
  }
  out.push("</svg>");
  return out.join("\n");
};
