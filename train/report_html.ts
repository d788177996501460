/**
 * Renders a run's inputs as one self-contained HTML page: inline CSS and SVG, example images as base64
 * data URIs, no scripts and nothing fetched from anywhere. Sections whose inputs are missing say so in
 * a short note instead of disappearing, so an empty section reads as "not produced yet", not as a bug.
 */
import type { EvalRecord } from "../eval/eval_record.ts";
import { escapeXml as escape, lineChart, type Series } from "./report_chart.ts";
import type { Example, ExampleRole, RunInputs, TrainLine } from "./report_inputs.ts";

export interface RenderOptions {
  readonly title?: string;
  /** Shown in the header; fixed in tests so the output is reproducible. */
  readonly generatedAt?: string;
}

/** Metrics arrive in percent (eval records and eval lines both). */
const percent = (x: number | null | undefined, digits = 2) =>
  x === null || x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(digits);

const number = (x: number | null | undefined, digits = 4) =>
  x === null || x === undefined || !Number.isFinite(x) ? "—" : Number(x.toPrecision(digits)).toString();

const duration = (seconds: number | null | undefined) => {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.round(seconds);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  return `${hh}:${String(mm).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
};

const note = (text: string) => `<p class="note">${escape(text)}</p>`;

const section = (id: string, title: string, body: string) =>
  `<section id="${id}"><h2>${escape(title)}</h2>\n${body}\n</section>`;

const lastDefined = <T>(lines: readonly TrainLine[], pick: (l: TrainLine) => T | null | undefined) => {
  for (let i = lines.length - 1; i >= 0; i--) {
    const v = pick(lines[i]);
    if (v !== null && v !== undefined) return { value: v, step: lines[i].step };
  }
  return undefined;
};

interface EvalPoint {
  readonly step: number;
  readonly mIoU: number | null;
  readonly mAP: number | null;
}

/** An image set: the split and how many of its images (unknown in logs from before it was recorded). */
const setName = (split: string, images: number | undefined) =>
  images === undefined ? split : `${split}, ${images} images`;

/**
 * Validation points per image set (split and image count): from metrics.jsonl, plus eval records whose
 * step the log lacks. Numbers from different image sets are never put on one curve or compared.
 */
const evalPoints = (inputs: RunInputs) => {
  const points = new Map<string, { split: string; images?: number; list: EvalPoint[] }>();
  const add = (split: string, images: number | undefined, p: EvalPoint) => {
    const key = setName(split, images);
    const set = points.get(key) ?? { split, images, list: [] };
    if (!set.list.some((q) => q.step === p.step)) set.list.push(p);
    points.set(key, set);
  };
  for (const l of inputs.log.eval) add(l.split, l.images, { step: l.step, mIoU: l.mIoU, mAP: l.mAP ?? null });
  for (const r of inputs.evals) add(r.split, r.images, { step: r.step, mIoU: r.mIoU, mAP: r.mAP });
  for (const set of points.values()) set.list.sort((a, b) => a.step - b.step);
  return points;
};

/**
 * The image set "best" is judged on, as checkpoint selection does: the one the training loop evaluated
 * on last (metrics.jsonl), else a validation split's, else any.
 */
const selectionSet = (inputs: RunInputs, points: ReturnType<typeof evalPoints>) => {
  const last = inputs.log.eval.at(-1);
  if (last) return setName(last.split, last.images);
  const keys = [...points.keys()];
  return keys.find((k) => points.get(k)!.split === "val") ?? keys[0];
};

const summaryCards = (inputs: RunInputs) => {
  const train = inputs.log.train;
  const last = train.at(-1);
  const loss = lastDefined(train, (l) => l.loss);
  const speed = lastDefined(train, (l) => l.imagesPerSecond);
  const elapsed = lastDefined(train, (l) => l.elapsedSeconds);
  let best: { set: string; step: number; mIoU: number } | undefined;
  let latestMap: { set: string; step: number; mAP: number } | undefined;
  const points = evalPoints(inputs);
  const judged = selectionSet(inputs, points);
  for (const [set, { list }] of points) {
    for (const p of list) {
      if (p.mIoU !== null && set === judged) {
        if (best === undefined || p.mIoU > best.mIoU) best = { set, step: p.step, mIoU: p.mIoU };
      }
      if (p.mAP !== null && (latestMap === undefined || p.step >= latestMap.step)) {
        latestMap = { set, step: p.step, mAP: p.mAP };
      }
    }
  }
  const card = (label: string, value: string, detail = "") =>
    `<div class="card"><div class="card-label">${escape(label)}</div><div class="card-value">${
      escape(value)
    }</div><div class="card-detail">${escape(detail)}</div></div>`;
  return `<div class="cards">${
    [
      card(
        "Step",
        last ? String(last.step) : "—",
        last ? `epoch ${number(last.epoch, 4)}` : "no training lines",
      ),
      card("Loss", number(loss?.value), loss ? `at step ${loss.step}` : ""),
      card(
        "Best mIoU",
        best ? `${percent(best.mIoU)} %` : "—",
        best ? `${best.set}, step ${best.step}` : "no eval yet",
      ),
      card(
        "mAP",
        latestMap ? latestMap.mAP.toFixed(2) : "—",
        latestMap ? `${latestMap.set}, step ${latestMap.step}` : "",
      ),
      card(
        "Throughput",
        speed ? `${number(speed.value, 3)} img/s` : "—",
        speed ? `at step ${speed.step}` : "",
      ),
      card("Elapsed", duration(elapsed?.value), ""),
    ].join("")
  }</div>`;
};

const trainingCharts = (inputs: RunInputs) => {
  const train = inputs.log.train;
  if (train.length === 0) return note("No training lines in metrics.jsonl yet.");
  const termNames: string[] = [];
  for (const l of train) {
    for (const k of Object.keys(l.terms ?? {})) if (!termNames.includes(k)) termNames.push(k);
  }
  const lossSeries: Series[] = [
    { name: "total", points: train.map((l) => [l.step, l.loss] as const) },
    ...termNames.map((k) => ({
      name: k,
      points: train.filter((l) => l.terms && k in l.terms).map((l) => [l.step, l.terms![k]] as const),
    })),
  ];
  const charts = [
    lineChart({ title: "Training loss", xLabel: "step", yLabel: "loss", series: lossSeries, xInclude: [0] }),
    lineChart({
      title: "Learning rate",
      xLabel: "step",
      yLabel: "lr",
      series: [{ name: "lr", points: train.map((l) => [l.step, l.lr] as const) }],
      yInclude: [0],
      xInclude: [0],
    }),
  ];
  if (train.some((l) => l.imagesPerSecond !== undefined && l.imagesPerSecond !== null)) {
    charts.push(lineChart({
      title: "Throughput",
      xLabel: "step",
      yLabel: "images / s",
      series: [{ name: "images/s", points: train.map((l) => [l.step, l.imagesPerSecond ?? null] as const) }],
      yInclude: [0],
      xInclude: [0],
    }));
  }
  return `<div class="charts">${charts.join("\n")}</div>`;
};

/**
 * mIoU and mAP in two panels: on CamVid every frame holds every class, so mAP sits at 100 and would
 * squash the mIoU curve on a shared axis.
 */
const validationCharts = (inputs: RunInputs) => {
  const points = evalPoints(inputs);
  if (points.size === 0) {
    return note("No evaluation yet: metrics.jsonl has no eval lines and there is no eval-*.json.");
  }
  const mIoU: Series[] = [];
  const mAP: Series[] = [];
  for (const [set, { list }] of points) {
    mIoU.push({ name: `mIoU (${set})`, points: list.map((p) => [p.step, p.mIoU]) });
    if (list.some((p) => p.mAP !== null)) {
      mAP.push({ name: `mAP (${set})`, points: list.map((p) => [p.step, p.mAP]) });
    }
  }
  // Percent axes from 0, never past 100; steps from 0, so that a run evaluated once (at its end) shows
  // where that point lies in the run instead of a lone dot in the middle of a narrow axis.
  const percentAxes = { xInclude: [0], yInclude: [0], yBounds: [0, 100] } as const;
  const charts = [
    lineChart({ title: "Validation mIoU", xLabel: "step", yLabel: "mIoU (%)", series: mIoU, ...percentAxes }),
  ];
  if (mAP.length) {
    charts.push(
      lineChart({ title: "Validation mAP", xLabel: "step", yLabel: "mAP (%)", series: mAP, ...percentAxes }),
    );
  }
  const explanation = mapExplanation(inputs.evals);
  return `<div class="charts">${charts.join("\n")}</div>${
    explanation ? `\n<p class="explain" id="map-note">${escape(explanation)}</p>` : ""
  }`;
};

/**
 * Why mAP reads what it reads, when classes occur in every evaluated image: such a class's average
 * precision is 100 whatever the scores (every image is a positive), so when every class that occurs is
 * in every image (CamVid: all 11 classes in all 101 val frames), mAP is 100 for any model.
 */
export const mapExplanation = (evals: readonly EvalRecord[]): string | undefined => {
  const r = evals.find((x) => x.mAP !== null && x.classesInEveryImage !== undefined);
  if (r === undefined || r.mAP === null || r.classesInEveryImage === undefined) return undefined;
  const everywhere = r.classesInEveryImage;
  const present = r.classesPresent ?? r.classes.length;
  if (everywhere.length === 0) return undefined;
  const set = setName(r.split, r.images);
  if (everywhere.length >= present) {
    return `mAP ${
      r.mAP.toFixed(2)
    } (${set}, step ${r.step}) says nothing about the ranking: every evaluated ` +
      `image holds every class that occurs in the set (all ${present}), so each class's average precision ` +
      "is 100 whatever the scores. mAP separates models only where images differ in the classes they hold.";
  }
  const shown = everywhere.slice(0, 10).join(", ") +
    (everywhere.length > 10 ? `, … ${everywhere.length - 10} more` : "");
  const one = everywhere.length === 1;
  const where = r.images === undefined ? r.split : `${r.split} (${r.images} images)`;
  return `${everywhere.length} of the ${present} classes in ${where} ${one ? "occurs" : "occur"} in every ` +
    `evaluated image (${shown}): ${one ? "its" : "their"} average precision is 100 whatever the scores, ` +
    "which lifts mAP.";
};

const classTable = (record: EvalRecord) => {
  const rows = record.classes.map((c) => {
    const width = c.iou === null ? 0 : Math.max(0, Math.min(100, c.iou));
    const meter = `<span class="meter"><span class="bar" style="width:${width.toFixed(1)}%"></span></span>`;
    const absent = c.iou === null ? ` class="absent" title="absent from this split"` : "";
    const name = c.novel
      ? `${escape(c.name)} <span class="novel" title="novel class">novel</span>`
      : escape(c.name);
    return `<tr${absent}><td>${name}</td><td class="num">${percent(c.iou)}</td><td>${meter}</td>` +
      `<td class="num">${percent(c.acc)}</td></tr>`;
  });
  const mAP = record.mAP === null ? "n/a" : record.mAP.toFixed(2);
  const images = record.images === undefined ? "" : `, ${record.images} images`;
  return `<div class="eval-table"><h3>${escape(record.split)}${images} — step ${record.step}</h3>` +
    `<p class="meta">checkpoint <code>${escape(record.checkpoint)}</code>, mode ${escape(record.mode)}<br>` +
    `mIoU ${percent(record.mIoU)} · mAcc ${percent(record.mAcc)} · aAcc ${percent(record.aAcc)} · mAP ${mAP}${
      record.mIoUBase === undefined && record.mIoUNovel === undefined
        ? ""
        : ` · mIoU base ${percent(record.mIoUBase ?? null)} · novel ${percent(record.mIoUNovel ?? null)}`
    }</p>` +
    `<table><thead><tr><th>Class</th><th class="num">IoU (%)</th><th></th><th class="num">Acc (%)</th></tr></thead><tbody>\n${
      rows.join("\n")
    }\n</tbody></table></div>`;
};

const ROLE_TITLES: [ExampleRole, string][] = [
  ["image", "Image"],
  ["label", "Ground truth"],
  ["pred", "Prediction"],
  ["overlay", "Overlay"],
];

const dataUri = (png: Uint8Array) => {
  let binary = "";
  // Chunked: String.fromCharCode(...bytes) on a whole image would overflow the argument list.
  for (let i = 0; i < png.length; i += 0x8000) binary += String.fromCharCode(...png.subarray(i, i + 0x8000));
  return `data:image/png;base64,${btoa(binary)}`;
};

const legendTitle = (c: { labelPixels: number; predPixels: number }) =>
  c.predPixels === 0
    ? "in the ground truth only"
    : c.labelPixels === 0
    ? "predicted only"
    : "in the ground truth and the prediction";

/** The classes of an example with their colours; HTML wraps long names instead of cutting them. */
const exampleLegend = (legend: NonNullable<Example["legend"]>) =>
  `<ul class="example-legend">${
    legend.classes.map((c) =>
      `<li class="${c.labelPixels === 0 ? "pred-only" : "in-label"}" title="${legendTitle(c)}">` +
      `<span class="swatch" style="background:rgb(${c.color.join(",")})"></span>${escape(c.name)}</li>`
    ).join("")
  }</ul>`;

const exampleRow = (example: Example) => {
  const roles = ROLE_TITLES.filter(([role]) => role !== "overlay" || example.images.overlay !== undefined);
  const cells = roles.map(([role, title]) => {
    const png = example.images[role];
    const body = png
      ? `<img src="${dataUri(png)}" alt="${escape(`${example.id} ${title}`)}">`
      : `<div class="missing">no ${escape(role)} image</div>`;
    return `<figure>${body}<figcaption>${escape(title)}</figcaption></figure>`;
  });
  const place = example.legend
    ? ` <span class="example-place">image ${
      example.legend.index + 1
    } of ${example.legend.of} in the split</span>`
    : "";
  return `<div class="example"><div class="example-id">${escape(example.id)}${place}</div>` +
    `<div class="example-row">${cells.join("")}</div>${
      example.legend ? exampleLegend(example.legend) : ""
    }</div>`;
};

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1f24; margin: 0;
  background: #f4f5f7; }
main { max-width: 1200px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 10px; } h3 { font-size: 15px; margin: 0; }
.sub { color: #5b6470; margin: 0 0 16px; }
.cards { display: grid; grid-template-columns: repeat(6, 1fr); gap: 10px; }
.card { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 10px 12px; }
.card-label { color: #5b6470; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card-value { font-size: 20px; font-weight: 600; } .card-detail { color: #5b6470; font-size: 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.chart { border: 1px solid #dde1e6; border-radius: 6px; background: #fff; }
.chart-title { font-size: 14px; font-weight: 600; } .tick { font-size: 11px; fill: #444c56; }
.axis-label, .legend { font-size: 12px; fill: #1b1f24; } .chart-empty { fill: #5b6470; }
.grid { stroke: #e6e9ed; } .axis { stroke: #3d444d; }
.note { color: #5b6470; font-style: italic; }
.eval-tables { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.eval-table { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 12px; }
.meta { color: #5b6470; margin: 4px 0 8px; }
table { border-collapse: collapse; min-width: 380px; } th, td { padding: 3px 10px; border-bottom: 1px solid #eceef1; }
th { text-align: left; color: #5b6470; font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
th.num { text-align: right; }
.meter { display: block; width: 120px; height: 10px; background: #eef1f4; border-radius: 2px; }
.bar { display: block; height: 100%; background: #4a7fd0; border-radius: 2px; }
tr.absent td { color: #9aa1a9; }
.novel { font-size: 11px; color: #8a4b00; background: #fff1dc; border-radius: 2px; padding: 0 3px; }
.example { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 10px; margin-bottom: 12px; }
.example-id { font-weight: 600; margin-bottom: 6px; } .example-row { display: flex; gap: 8px; }
figure { margin: 0; flex: 1; min-width: 0; } figure img { width: 100%; height: auto; display: block;
  image-rendering: pixelated; border-radius: 3px; }
figcaption { text-align: center; color: #5b6470; font-size: 12px; margin-top: 2px; }
.example-place { color: #5b6470; font-weight: normal; font-size: 12px; }
.example-legend { display: flex; flex-wrap: wrap; gap: 4px 14px; list-style: none; padding: 0; margin: 8px 0 0;
  font-size: 12px; }
.example-legend li { display: flex; align-items: center; gap: 5px; min-width: 0; overflow-wrap: anywhere; }
.example-legend li.pred-only { font-style: italic; color: #5b6470; }
.swatch { flex: none; width: 12px; height: 12px; border: 1px solid #444; border-radius: 2px; }
.explain { background: #fff8e1; border: 1px solid #ecd9a0; border-radius: 6px; padding: 8px 12px; }
.missing { background: #eceef1; color: #5b6470; text-align: center; padding: 40px 0; border-radius: 3px; }
code { font-size: 12px; }
`;

/** The report page for a run. */
export const renderReport = (inputs: RunInputs, { title, generatedAt }: RenderOptions = {}): string => {
  const heading = title ?? `Run report: ${inputs.runDir.split("/").filter(Boolean).at(-1) ?? inputs.runDir}`;
  const evalBody = inputs.evals.length === 0
    ? note("No eval-*.json yet: per-class results appear after the first evaluation.")
    : `<div class="eval-tables">${inputs.evals.map(classTable).join("\n")}</div>`;
  const examplesBody = inputs.examples.length === 0
    ? note("No example predictions (examples/*.png) yet.")
    : inputs.examples.map(exampleRow).join("\n") +
      (inputs.examplesOmitted > 0 ? note(`${inputs.examplesOmitted} more example(s) not shown.`) : "");
  const notes = inputs.notes.length === 0
    ? ""
    : section("notes", "Notes", `<ul>${inputs.notes.map((n) => `<li>${escape(n)}</li>`).join("")}</ul>`);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(heading)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escape(heading)}</h1>
<p class="sub">${escape(inputs.runDir)}${generatedAt ? ` · generated ${escape(generatedAt)}` : ""}</p>
${summaryCards(inputs)}
${section("training", "Training", trainingCharts(inputs))}
${section("validation", "Validation", validationCharts(inputs))}
${section("classes", "Per-class results (latest evaluation)", evalBody)}
${section("examples", "Example predictions", examplesBody)}
${notes}
</main>
</body>
</html>
`;
};
