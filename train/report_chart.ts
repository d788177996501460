/**
 * Line charts as inline SVG text for the run report: axes with "nice" ticks (1, 2, 5 × 10^k steps),
 * gridlines, axis labels, a legend and one path per series. Points whose y is null or not finite break
 * the line instead of dragging it to 0. Every series element carries `data-series` and `data-points`
 * (the raw x,y pairs) so tests and curious readers can check the numbers behind the drawing.
 */

export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number | null])[];
  readonly color?: string;
}

export interface LineChartSpec {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly width?: number;
  readonly height?: number;
  /** Forces the y range to include these values (e.g. 0 for losses and percentages). */
  readonly yInclude?: readonly number[];
  /** Forces the x range to include these values (step 0, so that one point is not a lone dot mid-axis). */
  readonly xInclude?: readonly number[];
  /** The y axis never goes past these (0 and 100 for percentages: no tick at 110 %). */
  readonly yBounds?: readonly [number, number];
}

/** Colors for series without one, chosen to stay apart from each other and readable on white. */
export const SERIES_COLORS = [
  "#1d5fbf",
  "#d1432b",
  "#2b9348",
  "#8e44ad",
  "#e08a00",
  "#0f8b8d",
  "#b5179e",
  "#6c757d",
  "#7a4f01",
];

export const escapeXml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** About `target` evenly spaced round tick values covering [min, max]. */
export const niceTicks = (min: number, max: number, target = 5): { ticks: number[]; step: number } => {
  if (!(Number.isFinite(min) && Number.isFinite(max))) return { ticks: [0, 1], step: 1 };
  if (max === min) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    return niceTicks(min - pad, max + pad, target);
  }
  const rough = (max - min) / target;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const fraction = rough / magnitude;
  const step = (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * magnitude;
  const first = Math.floor(min / step + 1e-9);
  const last = Math.ceil(max / step - 1e-9);
  // Round away binary noise (0.30000000000000004) using the step's decimal places.
  const decimals = Math.max(0, -Math.floor(Math.log10(step))) + 1;
  const ticks = Array.from(
    { length: last - first + 1 },
    (_, k) => Number(((first + k) * step).toFixed(decimals)),
  );
  return { ticks, step };
};

/**
 * Tick labels for one axis, in one format for all ticks: exponent form when the axis holds only tiny
 * or huge values (learning rates), otherwise as many decimals as the tick step needs.
 */
export const formatTicks = (ticks: readonly number[], step: number): string[] => {
  const largest = Math.max(...ticks.map(Math.abs));
  if (largest > 0 && (largest < 1e-2 || largest >= 1e6)) {
    return ticks.map((t) => (t === 0 ? "0" : t.toExponential(1)));
  }
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return ticks.map((t) => (t === 0 ? "0" : t.toFixed(decimals)));
};

/**
 * Ticks kept within [low, high]: a flat series at a bound (mAP 100) is padded past it by `niceTicks`, and a
 * percentage axis must not show 110 %. Where dropping ticks leaves fewer than two, the bound itself is
 * the other end.
 */
const boundedTicks = (t: { ticks: number[]; step: number }, low: number, high: number) => {
  const inside = t.ticks.filter((v) => v >= low - 1e-9 && v <= high + 1e-9);
  if (inside.length === t.ticks.length) return t;
  if (inside.length >= 2) return { ticks: inside, step: t.step };
  const bound = t.ticks[0] < low ? low : high;
  return niceTicks(Math.min(bound, inside[0] ?? bound), Math.max(bound, inside[0] ?? bound), 5);
};

const round2 = (v: number) => Math.round(v * 100) / 100;

/** Splits a series into runs of drawable points (finite x and y). */
const drawableRuns = (points: Series["points"]): [number, number][][] => {
  const runs: [number, number][][] = [];
  let current: [number, number][] = [];
  for (const [x, y] of points) {
    if (y === null || !Number.isFinite(y) || !Number.isFinite(x)) {
      if (current.length > 0) runs.push(current);
      current = [];
    } else current.push([x, y]);
  }
  if (current.length > 0) runs.push(current);
  return runs;
};

const LEGEND_ROW = 18;

export const lineChart = (spec: LineChartSpec): string => {
  const width = spec.width ?? 560;
  const height = spec.height ?? 300;
  const series = spec.series.map((s, i) => ({
    ...s,
    color: s.color ?? SERIES_COLORS[i % SERIES_COLORS.length],
  }));

  // Legend items flow left to right and wrap; the plot starts below them.
  const legend: { x: number; y: number; name: string; color: string }[] = [];
  let lx = 64;
  let row = 0;
  for (const s of series) {
    const itemWidth = 26 + s.name.length * 7;
    if (lx + itemWidth > width - 8 && lx > 64) {
      lx = 64;
      row++;
    }
    legend.push({ x: lx, y: 44 + row * LEGEND_ROW, name: s.name, color: s.color });
    lx += itemWidth + 12;
  }
  const top = 44 + row * LEGEND_ROW + 14;
  const margin = { left: 64, right: 18, top, bottom: 46 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;

  const runs = series.map((s) => drawableRuns(s.points));
  const drawn = runs.flat(2);
  const xs = drawn.map(([x]) => x);
  const ys = [...drawn.map(([, y]) => y), ...(spec.yInclude ?? [])];
  const [yLow, yHigh] = spec.yBounds ?? [-Infinity, Infinity];
  const clampY = (y: number) => Math.min(yHigh, Math.max(yLow, y));
  // Loops, not Math.min(...xs): long training logs would overflow the argument list.
  const range = (values: number[]): [number, number] =>
    values.reduce<[number, number]>(([lo, hi], v) => [Math.min(lo, v), Math.max(hi, v)], [
      Infinity,
      -Infinity,
    ]);
  const xTicks = niceTicks(...range([...xs, ...(xs.length ? spec.xInclude ?? [] : [])]), 6);
  const yTicks = boundedTicks(niceTicks(...range(ys.map(clampY)), 5), yLow, yHigh);
  const [x0, x1] = [xTicks.ticks[0], xTicks.ticks.at(-1)!];
  const [y0, y1] = [yTicks.ticks[0], yTicks.ticks.at(-1)!];
  const sx = (x: number) => round2(margin.left + ((x - x0) / (x1 - x0 || 1)) * plotW);
  const sy = (y: number) => round2(margin.top + plotH - ((y - y0) / (y1 - y0 || 1)) * plotH);

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(spec.title)}">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" class="chart-title">${escapeXml(spec.title)}</text>`,
  );
  if (xs.length === 0) {
    parts.push(
      `<text x="${width / 2}" y="${
        height / 2
      }" text-anchor="middle" class="chart-empty">no data points</text>`,
      "</svg>",
    );
    return parts.join("\n");
  }
  // Gridlines and tick labels.
  const yLabels = formatTicks(yTicks.ticks, yTicks.step);
  const xLabels = formatTicks(xTicks.ticks, xTicks.step);
  yTicks.ticks.forEach((t, i) => {
    const y = sy(t);
    parts.push(
      `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${y}" y2="${y}" class="grid"/>`,
      `<text x="${margin.left - 6}" y="${y + 4}" text-anchor="end" class="tick">${yLabels[i]}</text>`,
    );
  });
  xTicks.ticks.forEach((t, i) => {
    const x = sx(t);
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${margin.top}" y2="${margin.top + plotH}" class="grid"/>`,
      `<text x="${x}" y="${margin.top + plotH + 16}" text-anchor="middle" class="tick">${xLabels[i]}</text>`,
    );
  });
  // Axes and their labels.
  parts.push(
    `<line x1="${margin.left}" x2="${margin.left}" y1="${margin.top}" y2="${
      margin.top + plotH
    }" class="axis"/>`,
    `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${margin.top + plotH}" y2="${
      margin.top + plotH
    }" class="axis"/>`,
    `<text x="${margin.left + plotW / 2}" y="${height - 8}" text-anchor="middle" class="axis-label">${
      escapeXml(spec.xLabel)
    }</text>`,
    `<text transform="translate(16 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle" ` +
      `class="axis-label">${escapeXml(spec.yLabel)}</text>`,
  );
  // Series: one path per unbroken run; markers when points are few enough to tell apart.
  series.forEach((s, i) => {
    const dataPoints = s.points.map(([x, y]) => `${x},${y === null ? "null" : y}`).join(" ");
    const total = runs[i].reduce((n, r) => n + r.length, 0);
    const d = runs[i].map((r) => r.map(([x, y], j) => `${j === 0 ? "M" : "L"}${sx(x)} ${sy(y)}`).join(" "))
      .join(" ");
    const markers = total <= 40 || runs[i].some((r) => r.length === 1)
      ? runs[i].flat().map(([x, y]) => `<circle cx="${sx(x)}" cy="${sy(y)}" r="3" fill="${s.color}"/>`).join(
        "",
      )
      : "";
    parts.push(
      `<g class="series" data-series="${escapeXml(s.name)}" data-points="${dataPoints}">` +
        `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8" stroke-linejoin="round"/>${markers}</g>`,
    );
  });
  for (const item of legend) {
    parts.push(
      `<g class="legend-item"><rect x="${item.x}" y="${
        item.y - 9
      }" width="18" height="4" fill="${item.color}"/>` +
        `<text x="${item.x + 24}" y="${item.y - 3}" class="legend">${escapeXml(item.name)}</text></g>`,
    );
  }
  parts.push("</svg>");
  return parts.join("\n");
};
