import { Effect } from "effect";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { assertEquals } from "./assert.ts";
import { writePng } from "../eval/png.ts";
import { parseMetricsLog, readRunInputs } from "../train/report_inputs.ts";
import { renderReport, writeReport } from "../train/report.ts";

const withRun = async (body: (dir: string) => Promise<void>) => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-report-"));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

const trainLine = (step: number, loss: number | null, pixel: number, lr: number) =>
  JSON.stringify({
    kind: "train",
    step,
    epoch: 0,
    lr,
    loss,
    terms: { pixel, multilabel: 0.25 },
    imagesPerSecond: 12,
    elapsedSeconds: step * 2,
  });

const evalLine = { kind: "eval", split: "val", images: 25, units: "percent" };

const metricsLog = [
  trainLine(10, 1.5, 1.25, 0.001),
  trainLine(20, null, 1, 0.0005), // diverged step: NaN was written as null
  trainLine(30, 0.75, 0.5, 0.00025),
  JSON.stringify({ ...evalLine, step: 20, mIoU: 25, aAcc: 50, mAcc: 37.5, mAP: 50.5 }),
  JSON.stringify({ ...evalLine, step: 30, mIoU: 50, aAcc: 75, mAcc: 62.5, mAP: 60 }),
].join("\n") + "\n";

const evalRecord = {
  split: "val",
  images: 25,
  units: "percent",
  step: 30,
  checkpoint: "checkpoints/step-000030.safetensors",
  mIoU: 50,
  mAcc: 62.5,
  aAcc: 75,
  mAP: 60,
  classes: [
    { name: "sky", iou: 75, acc: 87.5 },
    { name: "road<1>", iou: 25, acc: 37.5 },
    { name: "pole", iou: null, acc: null },
  ],
  mode: "whole",
};

const fabricateRun = async (dir: string) => {
  await writeFile(join(dir, "metrics.jsonl"), metricsLog);
  await writeFile(join(dir, "eval-val.json"), JSON.stringify(evalRecord));
  await mkdir(join(dir, "examples"));
  for (const [role, value] of [["image", 10], ["label", 20], ["pred", 30]] as const) {
    await Effect.runPromise(
      writePng(join(dir, "examples", `0001-${role}.png`), new Uint8Array(12).fill(value), 2, 2),
    );
  }
};

Deno.test("report.html shows the chart series, the class table and embedded examples", () =>
  withRun(async (dir) => {
    await fabricateRun(dir);
    const file = await Effect.runPromise(writeReport(dir, { generatedAt: "2025-01-01T00:00:00Z" }));
    assertEquals(file, join(dir, "report.html"));
    const html = await readFile(file, "utf8");
    const has = (text: string) => assertEquals(html.includes(text), true, `missing ${text}`);
    // Chart series carry their raw points: loss with a gap at the null, each term, lr, validation in %.
    has(`data-series="total" data-points="10,1.5 20,null 30,0.75"`);
    has(`data-series="pixel" data-points="10,1.25 20,1 30,0.5"`);
    has(`data-series="multilabel" data-points="10,0.25 20,0.25 30,0.25"`);
    has(`data-series="lr" data-points="10,0.001 20,0.0005 30,0.00025"`);
    has(`data-series="images/s" data-points="10,12 20,12 30,12"`);
    for (const title of ["Training loss", "Learning rate", "Throughput"]) {
      has(`class="chart-title">${title}</text>`);
    }
    // Validation: mIoU and mAP in two charts of their own (mAP near 100 would squash mIoU on one axis),
    // each series named by its image set.
    const charts = html.split("<svg").slice(1);
    const validation = charts.filter((c) => c.includes(`class="chart-title">Validation`));
    assertEquals(validation.length, 2);
    const seriesOf = (svg: string) =>
      [...svg.matchAll(/data-series="([^"]*)" data-points="([^"]*)"/g)].map((m) => [m[1], m[2]]);
    assertEquals(validation[0].includes(`class="chart-title">Validation mIoU</text>`), true);
    assertEquals(seriesOf(validation[0]), [["mIoU (val, 25 images)", "20,25 30,50"]]);
    assertEquals(validation[1].includes(`class="chart-title">Validation mAP</text>`), true);
    assertEquals(seriesOf(validation[1]), [["mAP (val, 25 images)", "20,50.5 30,60"]]);
    // The mIoU axis spans the mIoU values only: its top tick is 50, not 60 or 100.
    assertEquals(
      [...validation[0].matchAll(/class="tick">([^<]*)</g)].map((m) => m[1]).includes("60"),
      false,
    );
    // Summary cards: best val mIoU and the latest mAP; the last loss skips the null.
    has(
      `<div class="card-label">Best mIoU</div><div class="card-value">50.00 %</div><div class="card-detail">val, 25 images, step 30</div>`,
    );
    has(`<div class="card-value">60.00</div>`);
    has(`<div class="card-value">0.75</div><div class="card-detail">at step 30</div>`);
    // Per-class table rows, names escaped, absent class greyed.
    has(`<td>sky</td><td class="num">75.00</td>`);
    has(`<span class="bar" style="width:75.0%"></span></span></td><td class="num">87.50</td></tr>`);
    has(`<td>road&lt;1&gt;</td><td class="num">25.00</td>`);
    has(`<tr class="absent" title="absent from this split"><td>pole</td><td class="num">—</td>`);
    has(`mIoU 50.00 · mAcc 62.50 · aAcc 75.00 · mAP 60.00`);
    // Examples embedded as data URIs of the very files in examples/.
    for (const role of ["image", "label", "pred"]) {
      const png = await readFile(join(dir, "examples", `0001-${role}.png`));
      has(`src="data:image/png;base64,${Buffer.from(png).toString("base64")}"`);
    }
    has(`<figcaption>Ground truth</figcaption>`);
    // Self-contained: no scripts, every src is inline.
    assertEquals(html.includes("<script"), false);
    assertEquals(
      [...html.matchAll(/src="([^"]*)"/g)].every((m) => m[1].startsWith("data:image/png;base64,")),
      true,
    );
    assertEquals(html.includes("<link"), false);
  }));

Deno.test("an empty run folder gives a report that says what is missing", () =>
  withRun(async (dir) => {
    const html = renderReport(await Effect.runPromise(readRunInputs(dir)));
    for (
      const text of [
        "No training lines in metrics.jsonl yet.",
        "No evaluation yet",
        "No eval-*.json yet",
        "No example predictions",
        `${join(dir, "metrics.jsonl")}: not found`,
      ]
    ) {
      assertEquals(html.includes(text), true, `missing ${text}`);
    }
    assertEquals(html.includes("<svg"), false);
  }));

Deno.test("examples beyond maxExamples are counted, missing roles get a placeholder", () =>
  withRun(async (dir) => {
    await mkdir(join(dir, "examples"));
    for (const id of ["a", "b", "c"]) {
      await Effect.runPromise(writePng(join(dir, "examples", `${id}-image.png`), new Uint8Array(3), 1, 1));
    }
    const inputs = await Effect.runPromise(readRunInputs(dir, { maxExamples: 2 }));
    assertEquals(inputs.examples.map((e) => e.id), ["a", "b"]);
    assertEquals(inputs.examplesOmitted, 1);
    const html = renderReport(inputs);
    assertEquals(html.includes("1 more example(s) not shown."), true);
    assertEquals(html.includes(`<div class="missing">no pred image</div>`), true);
  }));

Deno.test("metrics.jsonl problems: errors name file and line, truncated tail and unknown kinds are notes", () => {
  const file = "run/metrics.jsonl";
  const parse = (text: string) => Effect.runSync(Effect.result(parseMetricsLog(text, file)));
  const bad = parse(`${trainLine(10, 1, 1, 0.1)}\n{oops\n${trainLine(20, 1, 1, 0.1)}\n`);
  assertEquals(bad._tag === "Failure" && bad.failure.message.startsWith(`${file}:2: not JSON`), true);
  const schema = parse(`${JSON.stringify({ kind: "train", step: 10, epoch: 0, lr: 0.1, loss: "high" })}\n`);
  assertEquals(
    schema._tag === "Failure" && schema.failure.message.startsWith(`${file}:1: train line:`),
    true,
  );
  assertEquals(schema._tag === "Failure" && schema.failure.message.includes(`["loss"]`), true);
  const negativeStep = parse(`${JSON.stringify({ kind: "eval", step: -5, split: "val", mIoU: 0.1 })}\n`);
  assertEquals(negativeStep._tag === "Failure" && negativeStep.failure.message.includes(`["step"]`), true);

  const tolerated = parse(`${trainLine(10, 1, 1, 0.1)}\n{"kind":"memory","rss":1}\n{"kind":"train","st`);
  assertEquals(tolerated._tag, "Success");
  if (tolerated._tag === "Success") {
    assertEquals(tolerated.success.train.length, 1);
    assertEquals(tolerated.success.notes, [
      `${file}:3: skipped an unterminated last line (interrupted write?)`,
      `${file}: skipped 1 line(s) of kind "memory"`,
    ]);
  }
});

Deno.test("eval lines from before units were recorded (fractions) read as percent", () => {
  const legacy = JSON.stringify({
    kind: "eval",
    step: 20,
    split: "val",
    mIoU: 0.25,
    aAcc: 0.5,
    mAcc: 0.375,
    mAP: 50.5,
  });
  const current = JSON.stringify({ ...evalLine, step: 30, mIoU: 50, aAcc: 75, mAcc: 62.5, mAP: 60 });
  const log = Effect.runSync(parseMetricsLog(`${legacy}\n${current}\n`, "m.jsonl"));
  assertEquals(log.eval.map((l) => [l.step, l.mIoU, l.aAcc, l.mAcc, l.mAP, l.units]), [
    [20, 25, 50, 37.5, 50.5, "percent"],
    [30, 50, 75, 62.5, 60, "percent"],
  ]);
});

Deno.test("an unreadable metrics.jsonl fails naming the file", () =>
  withRun(async (dir) => {
    const file = join(dir, "metrics.jsonl");
    await mkdir(file); // a directory where the log should be
    const error = await Effect.runPromise(Effect.flip(writeReport(dir)));
    assertEquals(error.message.startsWith(`${file}: cannot read`), true, error.message);
  }));

Deno.test("an invalid eval-<split>.json fails the report naming the file", () =>
  withRun(async (dir) => {
    const file = join(dir, "eval-val.json");
    await writeFile(file, JSON.stringify({ ...evalRecord, classes: [{ name: "sky", iou: "0.5" }] }));
    const error = await Effect.runPromise(Effect.flip(writeReport(dir)));
    assertEquals(error._tag, "ReportError");
    assertEquals(error.file, file);
    assertEquals(error.message.startsWith(`${file}: `), true, error.message);
    assertEquals(error.message.includes(`["classes"][0]["iou"]`), true, error.message);
  }));

/** The tick labels of one chart, in document order (y axis first, then x). */
const ticksOf = (svg: string) =>
  [...svg.matchAll(/<text x="([\d.]+)" y="([\d.]+)" text-anchor="(end|middle)" class="tick">([^<]*)</g)]
    .map((m) => ({ axis: m[3] === "end" ? "y" : "x", label: m[4] }));
const axis = (svg: string, which: "x" | "y") =>
  ticksOf(svg).filter((t) => t.axis === which).map((t) => t.label);

Deno.test("one evaluation at the end: the step axis starts at 0, percent axes span 0 to at most 100", () =>
  withRun(async (dir) => {
    await writeFile(
      join(dir, "metrics.jsonl"),
      [
        trainLine(250, 1, 0.5, 0.001),
        trainLine(500, 0.5, 0.25, 0.0001),
        JSON.stringify({ ...evalLine, step: 500, images: 101, mIoU: 45.93, aAcc: 90, mAcc: 55, mAP: 100 }),
      ].join("\n") + "\n",
    );
    const html = renderReport(await Effect.runPromise(readRunInputs(dir)));
    const [mIoU, mAP] = html.split("<svg").slice(1).filter((c) =>
      c.includes(`class="chart-title">Validation`)
    );
    // Before: x ticks 440..560 around the lone point, and an mAP axis up to 110 %.
    assertEquals(axis(mIoU, "x"), ["0", "100", "200", "300", "400", "500"]);
    assertEquals(axis(mIoU, "y"), ["0", "10", "20", "30", "40", "50"]);
    assertEquals(axis(mAP, "x"), ["0", "100", "200", "300", "400", "500"]);
    assertEquals(axis(mAP, "y"), ["0", "20", "40", "60", "80", "100"]);
  }));

const recordWith = (extra: Record<string, unknown>) => JSON.stringify({ ...evalRecord, mAP: 100, ...extra });

Deno.test("an mAP of 100 because every image holds every class is explained in the report", () =>
  withRun(async (dir) => {
    const names = evalRecord.classes.map((c) => c.name);
    await writeFile(
      join(dir, "eval-val.json"),
      recordWith({ classesInEveryImage: names, classesPresent: 3 }),
    );
    const note = (html: string) => /<p class="explain" id="map-note">([^<]*)<\/p>/.exec(html)?.[1];
    const all = note(renderReport(await Effect.runPromise(readRunInputs(dir))));
    assertEquals(
      all,
      "mAP 100.00 (val, 25 images, step 30) says nothing about the ranking: every evaluated image holds " +
        "every class that occurs in the set (all 3), so each class's average precision is 100 whatever " +
        "the scores. mAP separates models only where images differ in the classes they hold.",
    );
    // Some classes in every image: named, as lifting mAP; none: no note.
    await writeFile(
      join(dir, "eval-val.json"),
      recordWith({ classesInEveryImage: ["sky"], classesPresent: 3 }),
    );
    assertEquals(
      note(renderReport(await Effect.runPromise(readRunInputs(dir)))),
      "1 of the 3 classes in val (25 images) occurs in every evaluated image (sky): its average precision is " +
        "100 whatever the scores, which lifts mAP.",
    );
    await writeFile(join(dir, "eval-val.json"), recordWith({ classesInEveryImage: [], classesPresent: 3 }));
    assertEquals(note(renderReport(await Effect.runPromise(readRunInputs(dir)))), undefined);
  }));

Deno.test("examples show their place in the split and a colour legend of the classes present", () =>
  withRun(async (dir) => {
    await fabricateRun(dir);
    await writeFile(
      join(dir, "examples", "0001-classes.json"),
      JSON.stringify({
        index: 17,
        of: 101,
        classes: [
          { class: 3, name: "road<1>", color: [128, 64, 128], labelPixels: 90, predPixels: 80 },
          { class: 0, name: "sky", color: [128, 128, 128], labelPixels: 10, predPixels: 0 },
          { class: 5, name: "bicyclist", color: [0, 128, 192], labelPixels: 0, predPixels: 20 },
        ],
      }),
    );
    const html = renderReport(await Effect.runPromise(readRunInputs(dir)));
    const has = (text: string) => assertEquals(html.includes(text), true, `missing ${text}`);
    has(`<div class="example-id">0001 <span class="example-place">image 18 of 101 in the split</span></div>`);
    const legend = /<ul class="example-legend">(.*?)<\/ul>/.exec(html)?.[1] ?? "";
    assertEquals(
      [...legend.matchAll(
        /<li[^>]*><span class="swatch" style="background:rgb\(([\d,]+)\)"><\/span>([^<]*)/g,
      )]
        .map((m) => [m[1], m[2]]),
      [["128,64,128", "road&lt;1&gt;"], ["128,128,128", "sky"], ["0,128,192", "bicyclist"]],
    );
    has(
      `title="in the ground truth only"><span class="swatch" style="background:rgb(128,128,128)"></span>sky`,
    );
    has(`title="predicted only"><span class="swatch" style="background:rgb(0,128,192)"></span>bicyclist`);
  }));

Deno.test("example images are spread evenly over the split, their phase seeded", async () => {
  const { exampleIndices } = await import("../eval/examples.ts");
  const picks = exampleIndices(101, 4, 0);
  assertEquals(picks.length, 4);
  // Gaps of 101 / 4 = 25.25 images, rounded down: 25 or 26; the first within the first gap.
  assertEquals(
    picks.slice(1).map((p, i) => p - picks[i]).every((g) => g === 25 || g === 26),
    true,
    `${picks}`,
  );
  assertEquals(picks[0] < 26, true, `${picks}`);
  assertEquals(exampleIndices(101, 4, 0), picks); // the same seed, the same frames
  assertEquals(exampleIndices(3, 5, 0), [0, 1, 2]); // more examples than images: every image once
  assertEquals(exampleIndices(10, 0, 0), []);
  const phases = new Set([0, 1, 2, 3, 4, 5, 6, 7].map((seed) => exampleIndices(101, 4, seed)[0]));
  assertEquals(phases.size > 1, true, "the seed moves the phase");
});

Deno.test("a trained run's report: examples spread over the split, each with its classes", async () => {
  const { exampleIndices } = await import("../eval/examples.ts");
  const { tinyExperiment } = await import("./fixtures/tiny_experiment.ts");
  const { train } = await import("../train/train.ts");
  const { openDataset } = await import("../data/open.ts");
  await withRun(async (dir) => {
    const base = tinyExperiment({ steps: 2, logEvery: 1, checkpointEvery: 2 });
    const e = { ...base, eval: { ...base.eval, examples: 3 } };
    await Effect.runPromise(train(e, { out: dir, workers: 0, print: () => {} }));
    const val = await Effect.runPromise(openDataset(e.data.dataset, e.data.dataset.testSplit));
    const expected = exampleIndices(val.samples.length, 3, e.train.seed);
    const ids = [
      ...new Set((await readdir(join(dir, "examples"))).map((f) => f.replace(/-[a-z]+\.(png|json)$/, ""))),
    ]
      .sort();
    assertEquals(ids, expected.map((i) => val.samples[i].id).sort());
    const first = JSON.parse(
      await readFile(join(dir, "examples", `${val.samples[expected[0]].id}-classes.json`), "utf8"),
    );
    assertEquals([first.index, first.of], [expected[0], val.samples.length]);
    assertEquals(first.classes.length > 0, true);
    const html = await readFile(join(dir, "report.html"), "utf8");
    assertEquals(html.split(`<ul class="example-legend">`).length - 1, 3);
  });
});

Deno.test("the quickstart evaluates at least 4 times, on the whole val split", async () => {
  const { default: quickstart } = await import("../experiments/quickstart.ts");
  const t = quickstart.train;
  const periodic = t.evalEvery > 0 ? Math.ceil(t.steps / t.evalEvery) - 1 : 0; // evaluations before the last step
  assertEquals(periodic + 1 >= 4, true, `evalEvery ${t.evalEvery} of ${t.steps} steps`);
});
