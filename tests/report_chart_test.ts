import { assertEquals } from "./assert.ts";
import { escapeXml, formatTicks, lineChart, niceTicks } from "../train/report_chart.ts";

Deno.test("niceTicks picks 1/2/5 x 10^k steps covering the range", () => {
  assertEquals(niceTicks(0, 1000, 6), { ticks: [0, 200, 400, 600, 800, 1000], step: 200 });
  // rough step 0.15 -> 0.2; from floor(0.12 / 0.2) = 0 to ceil(0.87 / 0.2) = 5 steps.
  assertEquals(niceTicks(0.12, 0.87, 5).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  // A flat series is padded by 10 % each side: [2.7, 3.3] -> step 0.2 from 2.6 to 3.4.
  assertEquals(niceTicks(3, 3, 5).ticks, [2.6, 2.8, 3, 3.2, 3.4]);
  assertEquals(niceTicks(-7, 13, 4), { ticks: [-10, -5, 0, 5, 10, 15], step: 5 });
});

Deno.test("formatTicks uses one format per axis", () => {
  assertEquals(formatTicks([0, 200, 400], 200), ["0", "200", "400"]);
  assertEquals(formatTicks([0, 0.2, 0.4], 0.2), ["0", "0.2", "0.4"]);
  assertEquals(formatTicks([0, 0.05, 0.1], 0.05), ["0", "0.05", "0.10"]);
  assertEquals(formatTicks([0, 5e-4, 1e-3], 5e-4), ["0", "5.0e-4", "1.0e-3"]); // learning rates
});

Deno.test("lineChart places points on hand-computed pixels", () => {
  // 560 x 300: plot x from 64 to 560 - 18 = 542; one legend row puts the plot top at 44 + 14 = 58 and
  // the bottom margin of 46 puts the x axis at 300 - 46 = 254. Ticks: x 0..10 step 2, y 0..1 step 0.2.
  const svg = lineChart({
    title: "T",
    xLabel: "step",
    yLabel: "loss",
    series: [{ name: "a", points: [[0, 0], [10, 1]] }],
  });
  assertEquals(svg.includes(`<path d="M64 254 L542 58"`), true, svg);
  assertEquals(svg.includes(`data-series="a" data-points="0,0 10,1"`), true);
  // (5, 0.5) would be at the middle: x 303, y 156.
  const mid = lineChart({
    title: "T",
    xLabel: "step",
    yLabel: "loss",
    series: [{ name: "a", points: [[0, 0], [5, 0.5], [10, 1]] }],
  });
  assertEquals(mid.includes(`<path d="M64 254 L303 156 L542 58"`), true);
  for (const label of ["0", "2", "4", "6", "8", "10", "0.2", "0.4", "0.6", "0.8", "1.0"]) {
    assertEquals(svg.includes(`class="tick">${label}</text>`), true, `tick ${label}`);
  }
  assertEquals(svg.includes(`class="axis-label">step</text>`), true);
  assertEquals(svg.includes(`class="axis-label">loss</text>`), true);
  assertEquals(svg.includes(`class="legend">a</text>`), true);
  assertEquals(svg.includes(`class="chart-title">T</text>`), true);
});

Deno.test("lineChart breaks lines at null and non-finite values and escapes names", () => {
  const svg = lineChart({
    title: "Loss <total>",
    xLabel: "step",
    yLabel: "loss",
    series: [{ name: `a&"b"`, points: [[0, 1], [1, 0], [2, null], [3, 1], [4, 0]] }],
  });
  assertEquals(svg.includes(`data-series="a&amp;&quot;b&quot;" data-points="0,1 1,0 2,null 3,1 4,0"`), true);
  const path = /<path d="([^"]+)"/.exec(svg)![1];
  assertEquals(path.split("M").length - 1, 2); // two separate runs
  assertEquals(svg.includes("Loss &lt;total&gt;"), true);
  assertEquals(escapeXml(`<&>"`), "&lt;&amp;&gt;&quot;");
});

Deno.test("lineChart with no drawable point says so", () => {
  const svg = lineChart({
    title: "T",
    xLabel: "x",
    yLabel: "y",
    series: [{ name: "a", points: [[1, null]] }],
  });
  assertEquals(svg.includes("no data points"), true);
  assertEquals(svg.includes("<path"), false);
});

Deno.test("percent axes stop at 100 and steps start at 0, also for one point or a flat series", () => {
  const yTicks = (svg: string) =>
    [...svg.matchAll(/text-anchor="end" class="tick">([^<]*)</g)].map((m) => m[1]);
  const xTicks = (svg: string) =>
    [...svg.matchAll(/text-anchor="middle" class="tick">([^<]*)</g)].map((m) => m[1]);
  const chart = (points: [number, number][], bounded: boolean) =>
    lineChart({
      title: "T",
      xLabel: "step",
      yLabel: "mAP (%)",
      series: [{ name: "a", points }],
      ...(bounded ? { xInclude: [0], yBounds: [0, 100] as const } : {}),
    });
  // A flat series at 100 %: padded to 90..110 without bounds, 90..100 with them.
  assertEquals(yTicks(chart([[100, 100], [200, 100]], false)).at(-1), "110");
  assertEquals(yTicks(chart([[100, 100], [200, 100]], true)), ["90", "95", "100"]);
  assertEquals(yTicks(chart([[10, 97], [20, 100]], true)).at(-1), "100");
  // One point at step 500: the axis runs from 0 rather than 440..560 around it.
  assertEquals(xTicks(chart([[500, 40]], false)), ["440", "460", "480", "500", "520", "540", "560"]);
  assertEquals(xTicks(chart([[500, 40]], true)), ["0", "100", "200", "300", "400", "500"]);
});
